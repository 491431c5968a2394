#include "r1/core/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <memory>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace r1 {
namespace {

inline void CpuRelax() {
#if defined(__x86_64__)
  _mm_pause();
#endif
}

thread_local bool t_inside_pool_job = false;

// How long an idle worker spins before it sleeps on the condition variable.
constexpr auto kSpinFor = std::chrono::microseconds(2000);

}  // namespace

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::RunChunks(int thread_index) {
  t_inside_pool_job = true;
  for (;;) {
    const int64_t c = next_chunk_.fetch_add(1, std::memory_order_relaxed);
    if (c >= num_chunks_) break;
    const int64_t begin = c * chunk_;
    const int64_t end = std::min(n_, begin + chunk_);
    (*fn_)(begin, end, thread_index);
  }
  t_inside_pool_job = false;
}

void ThreadPool::WorkerLoop(int index) {
  uint64_t seen = 0;
  for (;;) {
    auto spin_start = std::chrono::steady_clock::now();
    int spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen && !stop_.load()) {
      CpuRelax();
      if (++spins % 256 == 0 && std::chrono::steady_clock::now() - spin_start > kSpinFor) {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] {
          return generation_.load(std::memory_order_acquire) != seen || stop_.load();
        });
      }
    }
    if (stop_.load()) return;
    seen = generation_.load(std::memory_order_acquire);
    RunChunks(index);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::ParallelFor(int64_t n, int64_t grain,
                             const std::function<void(int64_t, int64_t, int)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int threads = size();
  bool expected = false;
  if (threads == 1 || n <= grain || t_inside_pool_job ||
      !busy_.compare_exchange_strong(expected, true)) {
    fn(0, n, 0);
    return;
  }
  // A few chunks per thread balance uneven work without much scheduling cost.
  const int64_t target_chunks = std::min<int64_t>((n + grain - 1) / grain, threads * 4);
  fn_ = &fn;
  n_ = n;
  chunk_ = (n + target_chunks - 1) / target_chunks;
  num_chunks_ = (n + chunk_ - 1) / chunk_;
  next_chunk_.store(0, std::memory_order_relaxed);
  pending_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(mu_);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  cv_.notify_all();
  RunChunks(0);
  while (pending_.load(std::memory_order_acquire) != 0) CpuRelax();
  busy_.store(false);
}

namespace {
std::unique_ptr<ThreadPool>& PoolSlot() {
  static std::unique_ptr<ThreadPool> pool;
  return pool;
}
}  // namespace

ThreadPool& DefaultPool() {
  auto& slot = PoolSlot();
  if (!slot) slot = std::make_unique<ThreadPool>(0);
  return *slot;
}

void SetDefaultPoolThreads(int threads) { PoolSlot() = std::make_unique<ThreadPool>(threads); }

}  // namespace r1
