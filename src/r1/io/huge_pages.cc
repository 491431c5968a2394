#include "r1/io/huge_pages.h"

#include <cstdlib>
#include <fstream>
#include <string_view>

#if defined(__linux__)
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
#endif

namespace r1 {

namespace {

constexpr size_t kHugePage = size_t{2} << 20;

bool Disabled() {
  const char* e = std::getenv("R1_HUGE_PAGES");
  return e && std::string_view(e) == "0";
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
    const bool rss = first == "Rss:", pmd = first == "FilePmdMapped:";
    if (!rss && !pmd) continue;
    const size_t bytes = std::stoull(line.substr(space)) * 1024;
    (rss ? out.resident : out.huge) += bytes;
  }
  return out;
}

size_t PrepareHugePages(const std::string& path, std::span<const uint8_t> mapping) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (Disabled() || mapping.size() < 16 * kHugePage) return 0;
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
  if (!pages.known || pages.huge >= samples * kHugePage / 2) return 0;
  // Re-reading helps only where the filesystem caches in 2 MiB folios. No stretch mapped whole
  // leaves that open: drop the first stretch alone and read it again, so that a filesystem without
  // large folios costs one 2 MiB read per load rather than the whole file.
  if (pages.huge == 0) {
    if (!DropCached(path, base, 0, kHugePage)) return 0;
    sink ^= *static_cast<const volatile uint8_t*>(mapping.data());
    if (ReadMappingPages(mapping).huge == 0) return 0;
  }
  // Mostly small pages: drop the file, so that the caller's next pass reads it again.
  return DropCached(path, base, 0, mapping.size()) ? mapping.size() : 0;
#else
  static_cast<void>(path);
  static_cast<void>(mapping);
  return 0;
#endif
}

}  // namespace r1
