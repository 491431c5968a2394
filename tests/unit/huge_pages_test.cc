#include "r1/io/huge_pages.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace r1 {
namespace {

namespace fs = std::filesystem;

constexpr size_t kHugePage = size_t{2} << 20;

// A file of `size` bytes under the test's temporary folder, mapped read-only by MapFileAligned as
// SafetensorsFile maps weights, unmapped at the end.
class MappedFile {
 public:
  MappedFile(const std::string& name, size_t size) : path_(fs::temp_directory_path() / name) {
    std::vector<uint8_t> bytes(size);
    std::iota(bytes.begin(), bytes.end(), uint8_t{1});
    const int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::write(fd, bytes.data(), size), static_cast<ssize_t>(size));
    ::fsync(fd);
    map_ = MapFileAligned(fd, size);
    EXPECT_NE(map_, MAP_FAILED);
    ::close(fd);
    size_ = size;
  }
  ~MappedFile() {
    ::munmap(map_, size_);
    fs::remove(path_);
  }
  std::span<const uint8_t> span() const { return {static_cast<const uint8_t*>(map_), size_}; }
  const std::string path() const { return path_.string(); }

  // Drops this process's entries, which would keep the cached pages, then the pages.
  void Uncache() const {
    ASSERT_EQ(::madvise(map_, size_, MADV_DONTNEED), 0);
    const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    ::close(fd);
  }

  // Leaves the file in the page cache in 4 KiB pages, as a file evicted and read back piecemeal is:
  // uncached, then read in 4 KiB pieces in random order without readahead.
  void CacheInSmallPages() const {
    Uncache();
    const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM), 0);
    std::vector<size_t> pages(size_ / 4096);
    std::iota(pages.begin(), pages.end(), size_t{0});
    std::shuffle(pages.begin(), pages.end(), std::mt19937(7));
    uint8_t buf[4096];
    for (size_t p : pages) ASSERT_EQ(::pread(fd, buf, sizeof buf, p * 4096), 4096);
    ::close(fd);
  }

 private:
  fs::path path_;
  void* map_ = nullptr;
  size_t size_ = 0;
};

// Reads one byte per 4 KiB page, which maps the whole span.
uint64_t Checksum(std::span<const uint8_t> bytes) {
  uint64_t sum = 0;
  for (size_t i = 0; i < bytes.size(); i += 4096)
    sum += static_cast<const volatile uint8_t*>(bytes.data())[i];
  return sum;
}

TEST(HugePages, ReadMappingPagesCountsTheMappingAlone) {
  MappedFile file("r1_huge_pages_count.bin", 6 << 20);
  const std::span<const uint8_t> all = file.span();
  const MappingPages before = ReadMappingPages(all);
  ASSERT_TRUE(before.known) << "/proc/self/smaps is unreadable";
  Checksum(all.first(4 << 20));
  const MappingPages after = ReadMappingPages(all);
  EXPECT_GE(after.resident, size_t{4} << 20);
  EXPECT_LE(after.resident, all.size());
  EXPECT_LE(after.huge, after.resident);
}

TEST(HugePages, LargeFilesAreMappedAtHugePageBoundaries) {
  for (const size_t size : {size_t{40} << 20, (size_t{33} << 20) + 4097, size_t{5000}}) {
    MappedFile file("r1_huge_pages_align.bin", size);
    const std::span<const uint8_t> bytes = file.span();
    if (size >= (size_t{32} << 20)) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(bytes.data()) % kHugePage, 0u) << size;
    }
    // The file's bytes, first to last, as written (1, 2, 3, ... wrapping at 256).
    EXPECT_EQ(bytes[0], 1);
    EXPECT_EQ(bytes[size - 1], static_cast<uint8_t>(size));
  }
}

TEST(HugePages, SmallOrDisabledFilesAreLeftAlone) {
  MappedFile small("r1_huge_pages_small.bin", 8 << 20);
  small.CacheInSmallPages();
  EXPECT_EQ(PrepareHugePages(small.path(), small.span()), 0u);

  MappedFile large("r1_huge_pages_off.bin", 48 << 20);
  large.CacheInSmallPages();
  setenv("R1_HUGE_PAGES", "0", 1);
  EXPECT_EQ(PrepareHugePages(large.path(), large.span()), 0u);
  unsetenv("R1_HUGE_PAGES");
  EXPECT_EQ(ReadMappingPages(large.span()).resident, 0u) << "disabled, it must not even touch";
}

TEST(HugePages, FileCachedInSmallPagesIsReadAgainIntoHugePages) {
  MappedFile file("r1_huge_pages_repair.bin", 48 << 20);
  // Whether this filesystem caches a file read in one pass in 2 MiB folios at all.
  file.Uncache();
  ASSERT_EQ(::madvise(const_cast<uint8_t*>(file.span().data()), file.span().size(), MADV_HUGEPAGE),
            0);
  const uint64_t expected = Checksum(file.span());
  if (ReadMappingPages(file.span()).huge < file.span().size() / 2) {
    GTEST_SKIP() << "the filesystem under " << fs::temp_directory_path()
                 << " does not cache files in 2 MiB folios (or THP is off)";
  }

  file.CacheInSmallPages();
  Checksum(file.span());  // maps the file as cached: in 4 KiB entries throughout
  const MappingPages fragmented = ReadMappingPages(file.span());
  EXPECT_LT(fragmented.huge, file.span().size() / 2);

  EXPECT_EQ(PrepareHugePages(file.path(), file.span()), file.span().size());
  EXPECT_EQ(Checksum(file.span()), expected) << "re-read contents differ";
  EXPECT_GE(ReadMappingPages(file.span()).huge, file.span().size() / 2);
  // Already in 2 MiB pages: a second call has nothing to do.
  EXPECT_EQ(PrepareHugePages(file.path(), file.span()), 0u);
}

TEST(HugePages, PagesAnotherMappingHoldsAreNotCountedAsDropped) {
  MappedFile file("r1_huge_pages_held.bin", 48 << 20);
  file.CacheInSmallPages();
  // A second mapping of all but the first 2 MiB, as another process serving the same model
  // would hold; the first 2 MiB is left free for the probe of the filesystem.
  const int fd = ::open(file.path().c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  const size_t size = file.span().size() - kHugePage;
  void* other = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, kHugePage);
  ::close(fd);
  ASSERT_NE(other, MAP_FAILED);
  Checksum({static_cast<const uint8_t*>(other), size});
  // Whatever the filesystem, the held pages stay cached, so at most the probe's 2 MiB goes.
  // Counting what was asked to go instead would say 48 MiB.
  EXPECT_LE(PrepareHugePages(file.path(), file.span()), kHugePage);
  ::munmap(other, size);
}

TEST(HugePages, WeightsMoveIntoAnonymousMemoryAtTheSameAddress) {
  // Not a multiple of 4 KiB, so the last page's tail past the file stays out of the checks.
  const size_t size = (size_t{40} << 20) + 1234;
  MappedFile file("r1_huge_pages_anon.bin", size);
  const std::span<const uint8_t> bytes = file.span();
  const uint64_t expected = Checksum(bytes);
  std::vector<double> fractions;
  ASSERT_EQ(MoveIntoAnonymousMemory(bytes, [&](double f) { fractions.push_back(f); }), size);
  EXPECT_EQ(Checksum(bytes), expected);
  EXPECT_EQ(bytes[0], 1);
  EXPECT_EQ(bytes[size - 1], static_cast<uint8_t>(size));
  ASSERT_FALSE(fractions.empty());
  EXPECT_TRUE(std::is_sorted(fractions.begin(), fractions.end()));
  EXPECT_EQ(fractions.back(), 1.0);
  // No longer the file's: its cached pages go and the bytes stay (Uncache would zero them, as
  // MADV_DONTNEED does to anonymous memory).
  const int fd = ::open(file.path().c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
  ::close(fd);
  const MappingPages moved = ReadMappingPages(bytes);
  ASSERT_EQ(moved.resident, (size + 4095) / 4096 * 4096)
      << "the weights must stay resident: they are no copy of the file any more";
  EXPECT_EQ(moved.anonymous, moved.resident);
  EXPECT_EQ(Checksum(bytes), expected);
  std::ifstream thp("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string modes;
  std::getline(thp, modes);
  if (!modes.empty() && modes.find("[never]") == std::string::npos) {
    EXPECT_GE(ReadMappingPages(bytes).huge, size / 2) << "THP is on (" << modes << ")";
  }
  // The copy is read-only, as the mapping was.
  EXPECT_DEATH(const_cast<uint8_t*>(bytes.data())[0] = 0, "");

  MappedFile small("r1_huge_pages_anon_small.bin", 8 << 20);
  Checksum(small.span());
  EXPECT_EQ(ReadMappingPages(small.span()).anonymous, 0u) << "a file mapping is not anonymous";
  EXPECT_EQ(MoveIntoAnonymousMemory(small.span()), 0u) << "small files stay mapped";
}

}  // namespace
}  // namespace r1
