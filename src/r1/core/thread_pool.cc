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

void ThreadPool::RunChunks(uint32_t generation, int thread_index) {
  t_inside_pool_job = true;
  for (;;) {
    uint64_t t = ticket_.load(std::memory_order_acquire);
    if ((t >> 32) != generation) break;
    // The job's fields are safe to read: `generation` was published after they were written.
    if (static_cast<int64_t>(t & 0xffffffffu) >= num_chunks_) break;
    if (!ticket_.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel)) continue;
    const int64_t c = static_cast<int64_t>(t & 0xffffffffu);
    (*fn_)(bounds_[c], bounds_[c + 1], thread_index);
    done_chunks_.fetch_add(1, std::memory_order_acq_rel);
  }
  t_inside_pool_job = false;
}

void ThreadPool::WorkerLoop(int index) {
  uint32_t seen = 0;
  for (;;) {
    auto spin_start = std::chrono::steady_clock::now();
    int spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen && !stop_.load()) {
      CpuRelax();
      if (++spins % 256 == 0 && std::chrono::steady_clock::now() - spin_start > kSpinFor) {
        std::unique_lock<std::mutex> lock(mu_);
        sleepers_.fetch_add(1);
        cv_.wait(lock, [&] {
          return generation_.load(std::memory_order_acquire) != seen || stop_.load();
        });
        sleepers_.fetch_sub(1);
      }
    }
    if (stop_.load()) return;
    seen = generation_.load(std::memory_order_acquire);
    RunChunks(seen, index);
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
  // Close the previous job's ticket before touching the job fields: a worker that read the old
  // ticket late must fail its compare-exchange rather than claim a chunk of the new job.
  {
    const uint64_t prev = generation_.load(std::memory_order_relaxed);
    ticket_.store((prev << 32) | 0xffffffffu, std::memory_order_seq_cst);
  }
  // Guided chunks: each takes a share of what is left, so the threads start on long stretches
  // (one weight stream each in decode) and finish on short ones. Equal chunks (n / 4 per thread)
  // left one thread idle for up to a chunk at the end of every product: 12% of decode's thread
  // time went to spinning.
  fn_ = &fn;
  bounds_.clear();
  bounds_.push_back(0);
  for (int64_t begin = 0; begin < n;) {
    const int64_t share = (n - begin + 2 * threads - 1) / (2 * threads);
    const int64_t size = std::max<int64_t>(grain, (share + grain - 1) / grain * grain);
    begin = std::min(n, begin + size);
    bounds_.push_back(begin);
  }
  num_chunks_ = static_cast<int64_t>(bounds_.size()) - 1;
  done_chunks_.store(0, std::memory_order_relaxed);
  const uint32_t gen = generation_.load(std::memory_order_relaxed) + 1;
  ticket_.store(static_cast<uint64_t>(gen) << 32, std::memory_order_release);
  if (sleepers_.load() > 0) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      generation_.store(gen, std::memory_order_release);
    }
    cv_.notify_all();
  } else {
    // Sequentially consistent, so either this thread sees the sleeper below or the sleeper's
    // wait predicate sees the new generation.
    generation_.store(gen, std::memory_order_seq_cst);
    // A worker that started to sleep just now must still be woken.
    if (sleepers_.load() > 0) {
      std::lock_guard<std::mutex> lock(mu_);
      cv_.notify_all();
    }
  }
  RunChunks(gen, 0);
  while (done_chunks_.load(std::memory_order_acquire) != num_chunks_) CpuRelax();
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
