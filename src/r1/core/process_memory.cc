#include "r1/core/process_memory.h"

#include <fstream>
#include <mutex>
#include <sstream>
#include <string>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace r1 {

ProcessMemory ReadProcessMemory() {
  ProcessMemory m;
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = line.substr(0, colon);
    int64_t* field = key == "VmRSS"     ? &m.vm_rss
                     : key == "RssAnon" ? &m.rss_anon
                     : key == "RssFile" ? &m.rss_file
                     : key == "RssShmem" ? &m.rss_shmem
                     : key == "VmHWM"   ? &m.vm_hwm
                                        : nullptr;
    if (field == nullptr) continue;
    // The kernel writes these as "<number> kB".
    std::istringstream value(line.substr(colon + 1));
    int64_t kb = 0;
    std::string unit;
    if (value >> kb >> unit && unit == "kB") *field = kb * 1024;
  }
  return m;
}

void KeepFreedBlocksInHeap() {
#if defined(__GLIBC__)
  static std::once_flag once;
  std::call_once(once, [] {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's largest allowed value on 64-bit
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
  });
#endif
}

}  // namespace r1
