#include "bench/load_generator.h"

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <functional>
#include <utility>

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

namespace optower::bench {
namespace {

using Clock = std::chrono::steady_clock;

int64_t NanosSince(Clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count();
}

double ProcessCpuSeconds() {
  struct rusage ru;
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

// Quantile of sorted values: the smallest value with at least q of the mass at or below it.
double Quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const size_t n = sorted.size();
  size_t i = static_cast<size_t>(std::ceil(q * static_cast<double>(n)));
  i = std::min(n, std::max<size_t>(i, 1)) - 1;
  return sorted[i];
}

}  // namespace

int64_t SteadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

uint32_t VersionTag(const std::string& model_version) {
  if (model_version.empty()) return 0;
  uint32_t h = 2166136261u;  // FNV-1a
  for (unsigned char c : model_version) h = (h ^ c) * 16777619u;
  return h == 0 ? 1 : h;
}

LoadResult::Quantiles LoadResult::LatencyMs(int64_t from_ns, int64_t to_ns) const {
  return LatencyMsIn({{from_ns, to_ns}});
}

LoadResult::Quantiles LoadResult::LatencyMsIn(
    const std::vector<std::pair<int64_t, int64_t>>& windows) const {
  std::vector<double> ms;
  ms.reserve(records.size());
  for (const CallRecord& r : records) {
    if (r.code != 0 || r.end_ns < 0) continue;
    bool in = false;
    for (const auto& w : windows) in = in || (r.start_ns >= w.first && r.start_ns < w.second);
    if (!in) continue;
    ms.push_back(1e-6 * static_cast<double>(r.end_ns - r.start_ns));
  }
  Quantiles q;
  q.n = static_cast<int64_t>(ms.size());
  if (ms.empty()) return q;
  std::sort(ms.begin(), ms.end());
  double sum = 0;
  for (double v : ms) sum += v;
  q.mean = sum / static_cast<double>(ms.size());
  q.p50 = Quantile(ms, 0.50);
  q.p95 = Quantile(ms, 0.95);
  q.p99 = Quantile(ms, 0.99);
  q.max = ms.back();
  return q;
}

struct LoadGenerator::RunState {
  LoadSpec spec;
  Clock::time_point t0;
  int64_t duration_ns = 0;
  std::vector<CallRecord> records;
  std::vector<Ack> acks;  // indexed like records (record_acks only)
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> issued{0};
  std::atomic<int64_t> completed{0};
  std::atomic<int64_t> ok{0};
  std::atomic<int64_t> failed{0};
  std::atomic<int64_t> served_items{0};
  std::atomic<int64_t> last_end_ns{0};
  std::atomic<bool> stop{false};

  absl::Mutex mu;
  int64_t active ABSL_GUARDED_BY(mu) = 0;  // closed loop: live slots; open loop: calls in flight
  std::map<int, int64_t> failures_by_code ABSL_GUARDED_BY(mu);
  std::string first_error ABSL_GUARDED_BY(mu);

  // Records the outcome of call `idx`. Returns false if the run should stop issuing.
  bool Complete(int64_t idx, const grpc::Status& status, const v1::RetrieveResponse& response) {
    const int64_t end = NanosSince(t0);
    CallRecord& r = records[static_cast<size_t>(idx)];
    r.end_ns = end;
    r.code = static_cast<int32_t>(status.error_code());
    int64_t prev = last_end_ns.load(std::memory_order_relaxed);
    while (end > prev && !last_end_ns.compare_exchange_weak(prev, end)) {
    }
    completed.fetch_add(1, std::memory_order_relaxed);
    if (status.ok()) {
      r.version = VersionTag(response.model_version());
      ok.fetch_add(1, std::memory_order_relaxed);
      served_items.fetch_add(response.items_size(), std::memory_order_relaxed);
      if (spec.record_acks) {
        Ack& a = acks[static_cast<size_t>(idx)];
        a.request_id = response.request_id();
        a.item_ids.reserve(static_cast<size_t>(response.items_size()));
        for (const v1::RetrievedItem& item : response.items()) a.item_ids.push_back(item.item_id());
      }
      return true;
    }
    const int64_t f = failed.fetch_add(1, std::memory_order_relaxed) + 1;
    {
      absl::MutexLock lock(&mu);
      ++failures_by_code[r.code];
      if (first_error.empty()) {
        first_error = absl::StrCat("code ", r.code, ": ", status.error_message());
      }
    }
    // A dead server would otherwise make a closed loop spin through max_requests of instant errors.
    if (f >= 1000) stop.store(true);
    return f < 1000;
  }
};

LoadGenerator::LoadGenerator(const std::string& address, int channels, std::vector<float> contexts,
                             int dim)
    : contexts_(std::move(contexts)), dim_(dim) {
  n_contexts_ = static_cast<int64_t>(contexts_.size()) / dim_;
  for (int i = 0; i < std::max(1, channels); ++i) {
    grpc::ChannelArguments args;
    // Separate connections: without these, channels with equal args share one subchannel.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("optower.bench.channel_id", i);
    args.SetMaxReceiveMessageSize(64 << 20);
    auto channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
    stubs_.push_back(v1::RetrievalService::NewStub(channel));
    channels_.push_back(std::move(channel));
  }
}

LoadGenerator::~LoadGenerator() = default;

bool LoadGenerator::WaitConnected(absl::Duration timeout) {
  const auto deadline = std::chrono::system_clock::now() + absl::ToChronoSeconds(timeout);
  for (auto& channel : channels_) {
    if (!channel->WaitForConnected(deadline)) return false;
  }
  return true;
}

void LoadGenerator::FillRequest(int64_t index, v1::RetrieveRequest* request, int32_t k) const {
  request->Clear();
  const float* x = contexts_.data() + (index % n_contexts_) * dim_;
  auto* dense = request->mutable_context()->mutable_dense();
  dense->Reserve(dim_);
  for (int j = 0; j < dim_; ++j) dense->Add(x[j]);
  request->set_k(k);
}

LoadResult LoadGenerator::Run(const LoadSpec& spec) {
  auto st = std::make_shared<RunState>();
  st->spec = spec;
  st->duration_ns = absl::ToInt64Nanoseconds(spec.duration);
  st->records.resize(static_cast<size_t>(spec.max_requests));
  if (spec.record_acks) st->acks.resize(static_cast<size_t>(spec.max_requests));
  const double cpu0 = ProcessCpuSeconds();
  st->t0 = Clock::now();
  const auto call_deadline = absl::ToChronoNanoseconds(spec.deadline);

  if (spec.rate_qps <= 0) {
    // ---- closed loop ----
    struct Slot {
      std::unique_ptr<grpc::ClientContext> context;
      v1::RetrieveRequest request;
      v1::RetrieveResponse response;
      v1::RetrievalService::Stub* stub = nullptr;
    };
    std::vector<std::unique_ptr<Slot>> slots;
    for (int i = 0; i < spec.concurrency; ++i) {
      slots.push_back(std::make_unique<Slot>());
      slots.back()->stub = stubs_[static_cast<size_t>(i) % stubs_.size()].get();
    }
    // issue(slot): starts the next call on `slot`, or retires the slot when the run is over.
    std::function<void(Slot*)> issue = [&, st](Slot* slot) {
      int64_t idx = -1;
      const bool external_stop = spec.stop != nullptr && spec.stop->load();
      if (!st->stop.load() && !external_stop && NanosSince(st->t0) < st->duration_ns) {
        idx = st->next.fetch_add(1);
        if (idx >= spec.max_requests) idx = -1;
      }
      if (idx < 0) {
        st->stop.store(true);
        absl::MutexLock lock(&st->mu);
        --st->active;
        return;
      }
      st->issued.fetch_add(1, std::memory_order_relaxed);
      FillRequest(idx, &slot->request, spec.k);
      slot->response.Clear();
      slot->context = std::make_unique<grpc::ClientContext>();
      slot->context->set_deadline(std::chrono::system_clock::now() + call_deadline);
      st->records[static_cast<size_t>(idx)].start_ns = NanosSince(st->t0);
      slot->stub->async()->Retrieve(slot->context.get(), &slot->request, &slot->response,
                                    [st, slot, idx, &issue](grpc::Status status) {
                                      if (!st->Complete(idx, status, slot->response)) {
                                        st->stop.store(true);
                                      }
                                      issue(slot);
                                    });
    };
    {
      absl::MutexLock lock(&st->mu);
      st->active = spec.concurrency;
    }
    for (auto& slot : slots) issue(slot.get());
    // Bounded drain: every slot retires after its last call (deadline-bounded) completes.
    absl::MutexLock lock(&st->mu);
    const absl::Duration wait = spec.duration + spec.deadline + absl::Seconds(5);
    st->mu.AwaitWithTimeout(absl::Condition(
                                +[](int64_t* active) { return *active == 0; }, &st->active),
                            wait);
    if (st->active != 0) {
      // Calls still in flight reference `slots` and `issue`: cannot return safely. This only
      // happens if gRPC ignores the per-call deadline; fail loudly rather than corrupt memory.
      std::fprintf(stderr, "optower_bench: %lld calls did not finish; aborting\n",
                   static_cast<long long>(st->active));
      std::abort();
    }
  } else {
    // ---- open loop ----
    struct Call {
      grpc::ClientContext context;
      v1::RetrieveRequest request;
      v1::RetrieveResponse response;
    };
    const double interval_ns = 1e9 / spec.rate_qps;
    for (int64_t i = 0; i < spec.max_requests; ++i) {
      const int64_t sched = static_cast<int64_t>(std::llround(static_cast<double>(i) * interval_ns));
      if (sched >= st->duration_ns || st->stop.load()) break;
      if (spec.stop != nullptr && spec.stop->load()) break;
      const int64_t ahead = sched - NanosSince(st->t0);
      if (ahead > 0) absl::SleepFor(absl::Nanoseconds(ahead));
      {
        absl::MutexLock lock(&st->mu);
        st->mu.AwaitWithTimeout(
            absl::Condition(
                +[](RunState* s) { return s->active < s->spec.concurrency; }, st.get()),
            spec.deadline);
        if (st->active >= spec.concurrency) break;  // stuck for a whole deadline: give up
        ++st->active;
      }
      auto* call = new Call();
      FillRequest(i, &call->request, spec.k);
      call->context.set_deadline(std::chrono::system_clock::now() + call_deadline);
      st->records[static_cast<size_t>(i)].start_ns = sched;
      st->next.store(i + 1);
      st->issued.fetch_add(1, std::memory_order_relaxed);
      stubs_[static_cast<size_t>(i) % stubs_.size()]->async()->Retrieve(
          &call->context, &call->request, &call->response, [st, call, i](grpc::Status status) {
            if (!st->Complete(i, status, call->response)) st->stop.store(true);
            delete call;
            absl::MutexLock lock(&st->mu);
            --st->active;
          });
    }
    absl::MutexLock lock(&st->mu);
    st->mu.AwaitWithTimeout(
        absl::Condition(+[](int64_t* active) { return *active == 0; }, &st->active),
        spec.deadline + absl::Seconds(5));
    if (st->active != 0) {
      std::fprintf(stderr, "optower_bench: %lld calls did not finish; aborting\n",
                   static_cast<long long>(st->active));
      std::abort();
    }
  }

  LoadResult out;
  out.issued = st->issued.load();
  out.completed = st->completed.load();
  out.ok = st->ok.load();
  out.failed = st->failed.load();
  out.unfinished = out.issued - out.completed;
  out.served_items_acked = st->served_items.load();
  out.t0_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(st->t0.time_since_epoch()).count();
  out.elapsed_s = 1e-9 * static_cast<double>(st->last_end_ns.load());
  out.cpu_s = ProcessCpuSeconds() - cpu0;
  {
    absl::MutexLock lock(&st->mu);
    out.failures_by_code = st->failures_by_code;
    out.first_error = st->first_error;
  }
  const int64_t n = std::min<int64_t>(st->next.load(), spec.max_requests);
  st->records.resize(static_cast<size_t>(n));
  out.records = std::move(st->records);
  if (spec.record_acks) {
    for (int64_t i = 0; i < n; ++i) {
      if (out.records[static_cast<size_t>(i)].code == 0) {
        out.acks.push_back(std::move(st->acks[static_cast<size_t>(i)]));
      }
    }
  }
  return out;
}

}  // namespace optower::bench
