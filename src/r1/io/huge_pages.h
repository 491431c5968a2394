#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "r1/io/safetensors.h"

namespace r1 {

// How a read-only file mapping is held in page-table entries, from /proc/self/smaps.
struct MappingPages {
  size_t resident = 0;  // bytes mapped now
  size_t huge = 0;      // of those, bytes mapped by 2 MiB entries (FilePmdMapped, AnonHugePages)
  size_t anonymous = 0;  // of those, bytes no longer the file's (MoveIntoAnonymousMemory)
  bool known = false;   // false where /proc/self/smaps cannot be read
};
MappingPages ReadMappingPages(std::span<const uint8_t> mapping);
// The same summed over a store's files (bench and info report it: decode speed depends on it).
MappingPages ReadMappingPages(const TensorStore& store);

// Decode streams every weight once per token, and on 4 KiB pages the TLB misses cost it 10-13% of
// its speed (docs/performance.md). ext4 and other filesystems with large folios cache a file read
// in one pass in 2 MiB folios, which map with 2 MiB entries; a file evicted (by memory pressure or
// DAMON) and read back piecemeal stays in 4 KiB pages for as long as it is cached. This asks for 2
// MiB pages on `mapping` (a read-only mapping of the file at `path`) and, where one byte per 2 MiB
// finds more than a tenth of the cached file in small pages, drops the file from the page cache so
// that the caller's next pass reads it again in 2 MiB folios (read again here, one fault per 2
// MiB). Returns the bytes dropped (0 when nothing needed to be, or where it is not possible: other
// processes' mappings keep pages in the cache). R1_HUGE_PAGES=0 in the environment turns it off.
// Linux only. mmap(PROT_READ, MAP_PRIVATE) of the whole file `fd` of `size` bytes, placed at a 2
// MiB-aligned address when the file is large enough for 2 MiB pages to matter (ext4 aligns such
// mappings by itself; not every filesystem does, and an unaligned mapping can never use 2 MiB
// entries). Returns MAP_FAILED on failure, as mmap does; munmap(result, size) unmaps it.
void* MapFileAligned(int fd, size_t size);

// `progress` gets the fraction of the file read again, while it is.
size_t PrepareHugePages(const std::string& path, std::span<const uint8_t> mapping,
                        const std::function<void(double)>& progress = {});

// R1_MMAP=0 in the environment: the weights are copied out of the file mapping into anonymous
// memory in 2 MiB pages (as llama.cpp's --no-mmap reads them) rather than decoded from the page
// cache. Where the filesystem caches files in 4 KiB pages only (ext4 before Linux 6.16, Debian
// 12's kernel among them) that is the only way decode gets 2 MiB entries; on this project's VM
// the page cache of a long-cached file also read slower than fresh memory (docs/performance.md).
bool WeightsInAnonymousMemory();

// Copies `mapping` (a whole read-only file mapping at a 2 MiB-aligned address) into anonymous
// memory in 2 MiB pages and moves that memory over the mapping's addresses (mremap), so every
// pointer into the weights stays valid and munmap(mapping) later frees it. Resident memory stays
// about the file's size, also while copying: each copied stretch of the mapping is unmapped at
// once, its pages left in the page cache for the kernel to reclaim or the next load to use. Returns the bytes moved: 0 for mappings under 32 MiB (the TLB
// covers them in 4 KiB pages) or where the kernel refuses, in which case the mapping is left as
// it was. `progress` gets the fraction copied.
size_t MoveIntoAnonymousMemory(std::span<const uint8_t> mapping,
                               const std::function<void(double)>& progress = {});

}  // namespace r1
