#include "r1/io/huge_pages.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string_view>
#include <vector>

namespace r1 {

namespace {

constexpr size_t kHugePage = size_t{2} << 20;
// Below 16 huge pages the TLB covers a file's mapping in 4 KiB pages well enough.
constexpr size_t kMinHugeFile = 16 * kHugePage;

bool Disabled() {
  const char* e = std::getenv("R1_HUGE_PAGES");
  return e && std::string_view(e) == "0";
}

// Both names' lines count, for file mappings and for weights moved into anonymous memory.
bool IsHugeField(std::string_view field) {
  return field == "FilePmdMapped:" || field == "AnonHugePages:";
}

#if defined(__linux__)
// Drops the entries of mapping bytes [offset, offset + size), which for a read-only file mapping
// frees nothing but the entries, then the file's cached pages there, which no mapping now holds
// unless another process maps the file.
bool DropCached(const std::string& path, void* base, size_t offset, size_t size) {
  if (madvise(static_cast<uint8_t*>(base) + offset, size, MADV_DONTNEED) != 0) return false;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const int rc =
      posix_fadvise(fd, static_cast<off_t>(offset), static_cast<off_t>(size), POSIX_FADV_DONTNEED);
  ::close(fd);
  return rc == 0;
}

// Anonymous memory of `length` bytes (a multiple of 4 KiB) at a 2 MiB-aligned address, or
// nullptr: 2 MiB more address space is reserved and the slack on either side given back.
void* ReserveAligned(size_t length, int prot) {
  const size_t span = length + kHugePage;
  void* reserve = ::mmap(nullptr, span, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (reserve == MAP_FAILED) return nullptr;
  const uintptr_t start = reinterpret_cast<uintptr_t>(reserve);
  const uintptr_t aligned = (start + kHugePage - 1) & ~(kHugePage - 1);
  if (aligned > start) ::munmap(reserve, aligned - start);
  if (aligned + length < start + span)
    ::munmap(reinterpret_cast<void*>(aligned + length), start + span - aligned - length);
  return reinterpret_cast<void*>(aligned);
}

// The bytes of `mapping` in the page cache, by mincore over 1 GiB at a time.
size_t CachedBytes(std::span<const uint8_t> mapping) {
  constexpr size_t kPage = 4096, kSlice = size_t{1} << 30;
  std::vector<unsigned char> in_core(kSlice / kPage);
  size_t cached = 0;
  for (size_t off = 0; off < mapping.size(); off += kSlice) {
    const size_t len = std::min(kSlice, mapping.size() - off);
    void* at = const_cast<uint8_t*>(mapping.data() + off);
    if (mincore(at, len, in_core.data()) != 0) return 0;
    for (size_t i = 0; i < (len + kPage - 1) / kPage; ++i) cached += (in_core[i] & 1) * kPage;
  }
  return std::min(cached, mapping.size());
}
#endif

}  // namespace

MappingPages ReadMappingPages(std::span<const uint8_t> mapping) {
  MappingPages out;
  std::ifstream in("/proc/self/smaps");
  if (!in) return out;
  out.known = true;
  const uintptr_t lo = reinterpret_cast<uintptr_t>(mapping.data()), hi = lo + mapping.size();
  bool inside = false;
  std::string line;
  while (std::getline(in, line)) {
    const size_t space = line.find(' ');
    const std::string_view first = std::string_view(line).substr(0, space);
    if (first.empty()) continue;
    if (first.back() != ':') {
      // A mapping's header: "start-end perms offset dev inode path", in hex.
      const size_t dash = first.find('-');
      if (dash == std::string_view::npos) continue;
      const uintptr_t a = std::stoull(std::string(first.substr(0, dash)), nullptr, 16);
      const uintptr_t b = std::stoull(std::string(first.substr(dash + 1)), nullptr, 16);
      inside = a < hi && b > lo;
      continue;
    }
    if (!inside) continue;
    const bool rss = first == "Rss:", pmd = IsHugeField(first), anon = first == "Anonymous:";
    if (!rss && !pmd && !anon) continue;
    const size_t bytes = std::stoull(line.substr(space)) * 1024;
    (rss ? out.resident : pmd ? out.huge : out.anonymous) += bytes;
  }
  return out;
}

void* MapFileAligned(int fd, size_t size) {
#if defined(__linux__)
  if (size < kMinHugeFile) return ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const size_t length = (size + 4095) & ~size_t{4095};
  void* reserve = ReserveAligned(length, PROT_NONE);
  if (reserve == nullptr) return ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  void* map = ::mmap(reserve, size, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
  if (map == MAP_FAILED) {
    ::munmap(reserve, length);
    return ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  }
  return map;
#else
  return ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
#endif
}

MappingPages ReadMappingPages(const TensorStore& store) {
  MappingPages sum;
  for (const SafetensorsFile* f : store.Files()) {
    const MappingPages p = ReadMappingPages(f->mapping());
    sum.known = p.known;
    sum.resident += p.resident;
    sum.huge += p.huge;
    sum.anonymous += p.anonymous;
  }
  return sum;
}

size_t PrepareHugePages(const std::string& path, std::span<const uint8_t> mapping,
                        const std::function<void(double)>& progress) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  // MADV_DONTNEED below would zero anonymous weights.
  if (Disabled() || WeightsInAnonymousMemory() || mapping.size() < kMinHugeFile) return 0;
  const uintptr_t lo = reinterpret_cast<uintptr_t>(mapping.data());
  // A 2 MiB entry maps a 2 MiB-aligned stretch of the file at a 2 MiB-aligned address; a mapping
  // placed otherwise can never use them, and dropping its cache would gain nothing.
  if (lo % kHugePage != 0) return 0;
  void* base = const_cast<uint8_t*>(mapping.data());
  if (madvise(base, mapping.size(), MADV_HUGEPAGE) != 0) return 0;  // a kernel without THP

  // One byte per 2 MiB maps each stretch as the page cache holds it: whole where it is one 2 MiB
  // folio (or is read now, into one, under MADV_HUGEPAGE), in 4 KiB pages otherwise.
  size_t samples = 0;
  uint8_t sink = 0;
  for (size_t off = 0; off + kHugePage <= mapping.size(); off += kHugePage, ++samples)
    sink ^= *static_cast<const volatile uint8_t*>(mapping.data() + off);
  static_cast<void>(sink);
  const MappingPages pages = ReadMappingPages(mapping);
  // A quarter of a Q4 file in small pages cost its decode 10% (20.9 against 23.2 tok/s), while
  // a re-read costs about 2 s per GB, once: re-read unless nine tenths are whole.
  if (!pages.known || pages.huge >= samples * kHugePage / 10 * 9) return 0;
  // Re-reading helps only where the filesystem caches in 2 MiB folios. No stretch mapped whole
  // leaves that open: drop the first stretch alone and read it again, so that a filesystem without
  // large folios costs one 2 MiB read per load rather than the whole file.
  if (pages.huge == 0) {
    if (!DropCached(path, base, 0, kHugePage)) return 0;
    sink ^= *static_cast<const volatile uint8_t*>(mapping.data());
    if (ReadMappingPages(mapping).huge == 0) return 0;
  }
  // More than a tenth in small pages: drop the file's cached pages.
  if (!DropCached(path, base, 0, mapping.size())) return 0;
  const size_t dropped = mapping.size() - CachedBytes(mapping);
  // Read it again here, one fault per 2 MiB in order: under MADV_HUGEPAGE each fault reads
  // whole 2 MiB folios. POSIX_FADV_WILLNEED instead cached the first few MiB in small folios
  // (its readahead grows the folio size as it goes: 83% of a 48 MiB file whole), and the
  // caller's two-thread prefault pass 84-92% of a 1.1 GB one; this takes 2.2 s for 1.1 GB
  // against 1.8 for WILLNEED, all of it whole.
  constexpr size_t kReportEvery = 32 * kHugePage;
  for (size_t off = 0; off < mapping.size(); off += kHugePage) {
    sink ^= *static_cast<const volatile uint8_t*>(mapping.data() + off);
    if (progress && off % kReportEvery == 0)
      progress(static_cast<double>(off) / static_cast<double>(mapping.size()));
  }
  if (progress) progress(1.0);
  return dropped;
#else
  static_cast<void>(path);
  static_cast<void>(mapping);
  static_cast<void>(progress);
  return 0;
#endif
}

bool WeightsInAnonymousMemory() {
  const char* e = std::getenv("R1_MMAP");
  return e && std::string_view(e) == "0";
}

size_t MoveIntoAnonymousMemory(std::span<const uint8_t> mapping,
                               const std::function<void(double)>& progress) {
#if defined(__linux__) && defined(MREMAP_FIXED) && defined(MADV_HUGEPAGE)
  const uintptr_t lo = reinterpret_cast<uintptr_t>(mapping.data());
  if (mapping.size() < kMinHugeFile || lo % kHugePage != 0) return 0;
  const size_t length = (mapping.size() + 4095) & ~size_t{4095};
  // 2 MiB-aligned, so that its 2 MiB pages move as whole entries.
  uint8_t* copy = static_cast<uint8_t*>(ReserveAligned(length, PROT_READ | PROT_WRITE));
  if (copy == nullptr) return 0;
  madvise(copy, length, MADV_HUGEPAGE);
  // Each copied stretch of the file mapping gives up its entries at once: with them all kept
  // until the end, resident memory peaked at twice the files' size (17.3 GB for V2-Lite Q4's 8.9).
  void* target = const_cast<uint8_t*>(mapping.data());
  constexpr size_t kChunk = 32 * kHugePage;
  for (size_t off = 0; off < mapping.size(); off += kChunk) {
    const size_t len = std::min(kChunk, mapping.size() - off);
    std::memcpy(copy + off, mapping.data() + off, len);
    madvise(static_cast<uint8_t*>(target) + off, len, MADV_DONTNEED);
    if (progress) progress(static_cast<double>(off) / static_cast<double>(mapping.size()));
  }
  if (mprotect(copy, length, PROT_READ) != 0 ||
      ::mremap(copy, length, length, MREMAP_MAYMOVE | MREMAP_FIXED, target) == MAP_FAILED) {
    ::munmap(copy, length);
    return 0;
  }
  if (progress) progress(1.0);
  return mapping.size();
#else
  static_cast<void>(mapping);
  static_cast<void>(progress);
  return 0;
#endif
}

}  // namespace r1
