// ThreadPool::ParallelFor: exact coverage, nesting, the spin-then-sleep handoff, and shutdown.
#include "r1/core/thread_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace r1 {
namespace {

// Runs `body` on a thread of its own and reports whether it finished within `limit`, so that a
// pool that hangs fails the test instead of blocking the whole test binary. On a timeout the
// thread is detached and never returns: everything `body` uses (its pools included) must live
// inside `body`, so a stuck pool is never destroyed (its destructor would join its workers).
::testing::AssertionResult FinishesWithin(std::chrono::seconds limit,
                                          std::function<void()> body) {
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> finished = done->get_future();
  std::thread runner([body = std::move(body), done] {
    body();
    done->set_value();
  });
  if (finished.wait_for(limit) == std::future_status::ready) {
    runner.join();
    return ::testing::AssertionSuccess();
  }
  runner.detach();
  return ::testing::AssertionFailure()
         << "ParallelFor did not return within " << limit.count()
         << " s (left running on a detached thread)";
}

constexpr auto kLimit = std::chrono::seconds(60);

// Runs one ParallelFor and checks that every index in [0, n) was visited exactly once, by chunks
// with valid thread indices. Returns the chunks seen, sorted.
std::vector<std::pair<int64_t, int64_t>> CheckCoverage(ThreadPool& pool, int64_t n,
                                                       int64_t grain) {
  std::vector<std::atomic<int>> hits(static_cast<size_t>(std::max<int64_t>(n, 0)));
  std::mutex mu;
  std::vector<std::pair<int64_t, int64_t>> chunks;
  std::atomic<int> bad_thread{0};
  pool.ParallelFor(n, grain, [&](int64_t b, int64_t e, int thread) {
    if (thread < 0 || thread >= pool.size()) bad_thread.fetch_add(1);
    for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1, std::memory_order_relaxed);
    std::lock_guard<std::mutex> lock(mu);
    chunks.emplace_back(b, e);
  });
  EXPECT_EQ(bad_thread.load(), 0) << "n=" << n << " grain=" << grain;
  for (int64_t i = 0; i < n; ++i) {
    if (hits[i].load() != 1) {
      ADD_FAILURE() << "pool " << pool.size() << " n=" << n << " grain=" << grain << ": index "
                    << i << " visited " << hits[i].load() << " times";
      break;
    }
  }
  std::sort(chunks.begin(), chunks.end());
  for (const auto& [b, e] : chunks) {
    EXPECT_LT(b, e) << "empty chunk, n=" << n;
    // Callers rely on this to keep Q8/Q4 tile groups on one thread.
    EXPECT_EQ(b % std::max<int64_t>(grain, 1), 0) << "n=" << n << " grain=" << grain;
  }
  return chunks;
}

const int64_t kSizes[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 16, 31, 64, 100, 127, 1000, 4097, 100003};
const int64_t kGrains[] = {0, 1, 2, 3, 4, 7, 64, 1000, 1 << 20};

TEST(ThreadPoolTest, SizeCountsTheCaller) {
  EXPECT_EQ(ThreadPool(1).size(), 1);
  EXPECT_EQ(ThreadPool(2).size(), 2);
  EXPECT_EQ(ThreadPool(4).size(), 4);
  EXPECT_GE(ThreadPool(0).size(), 1);
  EXPECT_GE(ThreadPool(-3).size(), 1);
}

TEST(ThreadPoolTest, CoversEveryIndexExactlyOnce) {
  EXPECT_TRUE(FinishesWithin(kLimit, [] {
    for (int threads : {1, 2, 4}) {
      ThreadPool pool(threads);
      for (int64_t n : kSizes)
        for (int64_t grain : kGrains) CheckCoverage(pool, n, grain);
    }
  }));
}

// Decode products stream one long stretch of weights per thread and end on short chunks, so the
// threads finish together: chunk sizes never grow, the first is a share of the whole, the last
// ones come down to the grain.
TEST(ThreadPoolTest, ChunksShrinkFromAShareOfTheWorkToTheGrain) {
  ThreadPool pool(2);
  const auto chunks = CheckCoverage(pool, 17920, 44);
  ASSERT_GE(chunks.size(), 8u);
  EXPECT_EQ(chunks.front().second, 4488);  // a quarter of 17920, rounded up to 44s
  for (size_t i = 1; i < chunks.size(); ++i)
    EXPECT_LE(chunks[i].second - chunks[i].first, chunks[i - 1].second - chunks[i - 1].first);
  EXPECT_LE(chunks.back().second - chunks.back().first, 44);
}

TEST(ThreadPoolTest, SingleThreadPoolRunsOneChunkOnTheCaller) {
  ThreadPool pool(1);
  const auto caller = std::this_thread::get_id();
  int calls = 0;
  pool.ParallelFor(1000, 1, [&](int64_t b, int64_t e, int thread) {
    ++calls;
    EXPECT_EQ(b, 0);
    EXPECT_EQ(e, 1000);
    EXPECT_EQ(thread, 0);
    EXPECT_EQ(std::this_thread::get_id(), caller);
  });
  EXPECT_EQ(calls, 1);
}

TEST(ThreadPoolTest, NoCallsForEmptyRange) {
  ThreadPool pool(3);
  int calls = 0;
  pool.ParallelFor(0, 1, [&](int64_t, int64_t, int) { ++calls; });
  pool.ParallelFor(-5, 1, [&](int64_t, int64_t, int) { ++calls; });
  EXPECT_EQ(calls, 0);
}

TEST(ThreadPoolTest, ChunksAreAtLeastGrain) {
  EXPECT_TRUE(FinishesWithin(kLimit, [] {
    // thread_pool.h: "Chunks are at least `grain` items". Every chunk but the last (which takes
    // the remainder) must hold; one failure is reported per (pool, n, grain).
    int violations = 0;
    for (int threads : {2, 4}) {
      ThreadPool pool(threads);
      for (int64_t n : kSizes) {
        for (int64_t grain : kGrains) {
          if (grain <= 1) continue;
          const auto chunks = CheckCoverage(pool, n, grain);
          for (size_t i = 0; i + 1 < chunks.size(); ++i) {
            if (chunks[i].second - chunks[i].first < grain) {
              if (++violations <= 8) {
                ADD_FAILURE() << "pool " << threads << " n=" << n << " grain=" << grain
                              << ": chunk [" << chunks[i].first << "," << chunks[i].second
                              << ") is smaller than the grain (" << chunks.size() << " chunks)";
              }
              break;
            }
          }
        }
      }
    }
    EXPECT_EQ(violations, 0);
  }));
}

TEST(ThreadPoolTest, NestedParallelForRunsSeriallyWithoutDeadlock) {
  EXPECT_TRUE(FinishesWithin(kLimit, [] {
    for (int threads : {2, 4}) {
      ThreadPool pool(threads);
      constexpr int64_t kOuter = 64, kInner = 37;
      std::vector<std::atomic<int>> hits(kOuter * kInner);
      std::atomic<int> inner_calls{0};
      pool.ParallelFor(kOuter, 1, [&](int64_t b, int64_t e, int) {
        for (int64_t o = b; o < e; ++o) {
          const auto me = std::this_thread::get_id();
          pool.ParallelFor(kInner, 1, [&](int64_t ib, int64_t ie, int) {
            inner_calls.fetch_add(1);
            // Serial on the thread that made the nested call.
            EXPECT_EQ(std::this_thread::get_id(), me);
            EXPECT_EQ(ib, 0);
            EXPECT_EQ(ie, kInner);
            for (int64_t i = ib; i < ie; ++i) hits[o * kInner + i].fetch_add(1);
          });
        }
      });
      for (int64_t i = 0; i < kOuter * kInner; ++i) ASSERT_EQ(hits[i].load(), 1) << i;
      EXPECT_EQ(inner_calls.load(), kOuter);
      // The pool still works normally afterwards.
      CheckCoverage(pool, 1000, 1);
    }
  }));
}

TEST(ThreadPoolTest, NestedCallOnAnotherPoolAlsoCompletes) {
  EXPECT_TRUE(FinishesWithin(kLimit, [] {
    ThreadPool outer(3), inner(3);
    std::atomic<int64_t> sum{0};
    outer.ParallelFor(12, 1, [&](int64_t b, int64_t e, int) {
      for (int64_t o = b; o < e; ++o) {
        inner.ParallelFor(100, 1, [&](int64_t ib, int64_t ie, int) {
          for (int64_t i = ib; i < ie; ++i) sum.fetch_add(i);
        });
      }
    });
    EXPECT_EQ(sum.load(), 12 * 4950);
  }));
}

TEST(ThreadPoolTest, ManyTinyBackToBackJobs) {
  EXPECT_TRUE(FinishesWithin(kLimit, [] {
    // More threads than cores makes it likely that a worker is preempted in the middle of
    // claiming a chunk while the caller already sets up the next job.
    for (int threads : {2, 3, 4, 8}) {
      ThreadPool pool(threads);
      std::atomic<int64_t> total{0};
      for (int job = 0; job < 10000; ++job) {
        const int64_t n = 1 + job % 9;
        std::atomic<int64_t> job_sum{0};
        pool.ParallelFor(n, 1, [&](int64_t b, int64_t e, int) {
          for (int64_t i = b; i < e; ++i) job_sum.fetch_add(i + 1, std::memory_order_relaxed);
        });
        // Each index ran exactly once, and all of them before ParallelFor returned.
        ASSERT_EQ(job_sum.load(), n * (n + 1) / 2) << "pool " << threads << " job " << job;
        total.fetch_add(job_sum.load());
      }
      EXPECT_GT(total.load(), 0);
    }
  }));
}

TEST(ThreadPoolTest, JobsAfterIdleStillComplete) {
  EXPECT_TRUE(FinishesWithin(kLimit, [] {
    // Workers spin ~2 ms after a job, then sleep; each job here starts after they are asleep.
    for (int threads : {2, 4}) {
      ThreadPool pool(threads);
      for (int round = 0; round < 6; ++round) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        CheckCoverage(pool, 1000 + round, 1);
        // And a burst right after waking, while the workers spin.
        for (int j = 0; j < 20; ++j) CheckCoverage(pool, 17, 1);
      }
    }
  }));
}

TEST(ThreadPoolTest, WorkersAwakeAfterSleepTakeChunks) {
  EXPECT_TRUE(FinishesWithin(kLimit, [] {
    // With slow chunks, a woken worker should take part: more than one thread index shows up.
    ThreadPool pool(4);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::mutex mu;
    std::vector<int> seen;
    pool.ParallelFor(16, 1, [&](int64_t, int64_t, int thread) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      std::lock_guard<std::mutex> lock(mu);
      seen.push_back(thread);
    });
    std::sort(seen.begin(), seen.end());
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    EXPECT_GT(seen.size(), 1u);
  }));
}

TEST(ThreadPoolTest, ConcurrentCallersFromTwoThreads) {
  EXPECT_TRUE(FinishesWithin(kLimit, [] {
    // A second caller while a job runs falls back to running its loop itself.
    ThreadPool pool(3);
    auto caller = [&pool](int seed) {
      for (int k = 0; k < 300; ++k) {
        const int64_t n = 50 + (k * 7 + seed) % 200;
        std::vector<std::atomic<int>> hits(n);
        pool.ParallelFor(n, 1, [&](int64_t b, int64_t e, int) {
          for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
        });
        for (int64_t i = 0; i < n; ++i) {
          if (hits[i].load() != 1) {
            ADD_FAILURE() << "caller " << seed << " job " << k << " index " << i;
            return;
          }
        }
      }
    };
    std::thread a(caller, 1), b(caller, 2);
    a.join();
    b.join();
  }));
}

TEST(ThreadPoolTest, DestructionWhileIdle) {
  EXPECT_TRUE(FinishesWithin(kLimit, [] {
    {
      ThreadPool pool(4);  // never used
    }
    {
      ThreadPool pool(4);
      CheckCoverage(pool, 100, 1);
      // Destroyed while the workers spin.
    }
    {
      ThreadPool pool(4);
      CheckCoverage(pool, 100, 1);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      // Destroyed while the workers sleep.
    }
    for (int i = 0; i < 20; ++i) {
      ThreadPool pool(2);
      if (i % 2) CheckCoverage(pool, 10, 1);
    }
    SUCCEED();
  }));
}

}  // namespace
}  // namespace r1
