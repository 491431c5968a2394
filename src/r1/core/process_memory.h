// The memory this process holds, as the kernel accounts it (Linux /proc/self/status), so a
// command can show what loading a model really cost: mapped weights show up as file-backed pages
// (RssFile), copies and buffers as anonymous ones (RssAnon).
#pragma once

#include <cstdint>

namespace r1 {

struct ProcessMemory {
  // Bytes; -1 where the kernel does not report the field (not Linux, or an old kernel).
  int64_t vm_rss = -1;     // resident set: anon + file + shmem
  int64_t rss_anon = -1;   // heap, stacks, owned copies
  int64_t rss_file = -1;   // resident pages of mapped files: the weights, the binary
  int64_t rss_shmem = -1;
  int64_t vm_hwm = -1;     // peak resident set so far
};

ProcessMemory ReadProcessMemory();

// Model steps and training steps allocate and free the same multi-megabyte buffers (activations,
// a new sequence's KV cache, gradients) again and again. glibc serves blocks above its mmap
// threshold with fresh mappings and unmaps them on free, so every step paid for page faults and
// zeroed pages again: half of a v3-nano training step, about 8% of a Qwen-1.5B q8 prefill.
// This keeps freed blocks up to 32 MiB in the heap for reuse (and up to 1 GiB of free heap
// before it is trimmed). Process-wide; called by Model and TrainModel, idempotent.
void KeepFreedBlocksInHeap();

}  // namespace r1
