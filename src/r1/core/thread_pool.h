// One persistent pool of worker threads shared by every kernel. Workers spin for a short while
// after each job before sleeping: decode steps issue hundreds of small parallel loops per token,
// and waking a sleeping thread costs more than most of those loops take.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace r1 {

class ThreadPool {
 public:
  // threads <= 0 picks the number of hardware threads. The calling thread works too, so a pool
  // of N threads starts N-1 workers.
  explicit ThreadPool(int threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end, thread_index) over disjoint chunks covering [0, n); returns when all
  // are done. Chunks are multiples of `grain` items (but the last), largest first. Nested calls
  // run serially on the caller.
  void ParallelFor(int64_t n, int64_t grain,
                   const std::function<void(int64_t, int64_t, int)>& fn);

 private:
  void WorkerLoop(int index);
  void RunChunks(uint32_t generation, int thread_index);

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<uint32_t> generation_{0};
  // (generation << 32) | next chunk index. Claiming a chunk with a compare-exchange on this word
  // means a worker that wakes late can never run a chunk of a job that has moved on, so the
  // caller waits only for the chunks to finish, not for every worker to check in.
  std::atomic<uint64_t> ticket_{0};
  std::atomic<int64_t> done_chunks_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
  std::atomic<bool> busy_{false};
  // The job of the current generation.
  const std::function<void(int64_t, int64_t, int)>* fn_ = nullptr;
  int64_t num_chunks_ = 0;
  std::vector<int64_t> bounds_;  // chunk c is [bounds_[c], bounds_[c + 1])
};

// Sets/gets the process-wide pool used by the engine (default: all hardware threads).
ThreadPool& DefaultPool();
void SetDefaultPoolThreads(int threads);

}  // namespace r1
