#include "features/stream_features.h"

#include <climits>
#include <utility>

namespace vigil::features {

StreamFeatures::StreamFeatures(FeatureSpec spec, size_t max_event_bytes,
                               metrics::Registry& registry)
    : spec_(std::move(spec)),
      decoder_({spec_.entity, spec_.time, spec_.amount}, max_event_bytes),
      scratch_(spec_.output_names().size()),
      replayed_(registry.counter("vigil_features_replayed_total",
                                 "Records replayed to rebuild feature state after an assignment "
                                 "(not scored)")),
      partial_(registry.counter("vigil_features_partial_total",
                                "Transactions scored with features over partial history")),
      entities_(
          registry.gauge("vigil_features_entities", "Entities (customers) with history in memory")),
      events_(registry.gauge("vigil_features_events", "Transactions kept in entity histories")),
      replaying_partitions_(registry.gauge("vigil_features_replaying_partitions",
                                           "Partitions rebuilding their feature state")),
      incomplete_partitions_(registry.gauge(
          "vigil_features_history_incomplete_partitions",
          "Partitions whose log no longer holds all the history their windows need")),
      dropped_idle_(registry.counter("vigil_features_entities_dropped_total",
                                     "Entities dropped from memory, by reason",
                                     {{"reason", "idle"}})),
      dropped_cap_(registry.counter("vigil_features_entities_dropped_total",
                                    "Entities dropped from memory, by reason",
                                    {{"reason", "cap"}})),
      late_(registry.counter("vigil_features_late_total",
                             "Transactions older than their partition's newest by more than the "
                             "allowed lateness")) {}

void StreamFeatures::assign(int32_t partition, int64_t replay_from, int64_t score_from,
                            bool log_complete) {
  revoke(partition);
  Partition& p = partitions_.emplace(partition, Partition(spec_)).first->second;
  p.score_from = std::max(replay_from, score_from);
  p.replay_done = replay_from >= score_from;
  p.log_complete = log_complete;
  update_notes();
}

void StreamFeatures::revoke(int32_t partition) {
  auto it = partitions_.find(partition);
  if (it == partitions_.end()) return;
  const auto f = it->second.windows.figures();
  gone_.observed += f.observed;
  gone_.dropped_idle += f.dropped_idle;
  gone_.dropped_cap += f.dropped_cap;
  gone_.late += f.late;
  partitions_.erase(it);
  update_notes();
}

bool StreamFeatures::replaying(int32_t partition, int64_t offset) const {
  auto it = partitions_.find(partition);
  return it != partitions_.end() && offset < it->second.score_from;
}

bool StreamFeatures::observe(Partition& p, double* out) {
  bool complete = p.windows.observe({tx_.entity, tx_.event_time_ms, tx_.amount}, out);
  if (!p.log_complete) {
    if (!p.partial_until_ms) {
      const int64_t reach = spec_.longest_window_ms() + spec_.allowed_lateness_ms;
      p.partial_until_ms =
          tx_.event_time_ms > INT64_MAX - reach ? INT64_MAX : tx_.event_time_ms + reach;
    }
    if (tx_.event_time_ms < *p.partial_until_ms) {
      complete = false;
    } else {
      p.log_complete = true;  // nothing the log lost can be inside a window any more
      update_notes();
    }
  }
  return complete;
}

void StreamFeatures::replay(int32_t partition, int64_t offset, std::string_view json,
                            int64_t record_time_ms) {
  auto it = partitions_.find(partition);
  if (it == partitions_.end()) return;
  Partition& p = it->second;
  replayed_.inc();
  if (decoder_.decode(json, record_time_ms, tx_).ok()) observe(p, scratch_.data());
  if (offset + 1 >= p.score_from && !p.replay_done) {
    p.replay_done = true;
    update_notes();
  }
}

codec::DecodeStatus StreamFeatures::compute(int32_t partition, std::string_view json,
                                            int64_t record_time_ms, InlineString& id,
                                            FeatureVector& features,
                                            std::optional<int64_t>& event_time_ms, bool& partial) {
  codec::DecodeStatus st = decoder_.decode(json, record_time_ms, tx_);
  if (!st.ok()) return st;
  auto it = partitions_.find(partition);
  if (it == partitions_.end()) {  // not assigned through assign(): a fresh, complete log
    it = partitions_.emplace(partition, Partition(spec_)).first;
  }
  Partition& p = it->second;
  if (!p.replay_done) {  // the first scored record: whatever was left to replay is not there
    p.replay_done = true;
    update_notes();
  }
  partial = !observe(p, scratch_.data());
  if (partial) partial_.inc();
  id.assign(tx_.transaction_id);
  event_time_ms = tx_.event_time_ms;
  features.resize(scratch_.size());
  for (size_t i = 0; i < scratch_.size(); ++i) features[i] = static_cast<float>(scratch_[i]);
  return st;
}

void StreamFeatures::refresh_gauges() {
  EntityWindows::Figures now = gone_;
  size_t entities = 0, events = 0;
  for (const auto& [n, p] : partitions_) {
    const auto f = p.windows.figures();
    entities += f.entities;
    events += f.events;
    now.dropped_idle += f.dropped_idle;
    now.dropped_cap += f.dropped_cap;
    now.late += f.late;
  }
  entities_.set(static_cast<double>(entities));
  events_.set(static_cast<double>(events));
  dropped_idle_.inc(now.dropped_idle - reported_.dropped_idle);
  dropped_cap_.inc(now.dropped_cap - reported_.dropped_cap);
  late_.inc(now.late - reported_.late);
  reported_ = now;
}

void StreamFeatures::update_notes() {
  std::vector<std::string> notes;
  size_t replaying = 0, incomplete = 0;
  for (const auto& [n, p] : partitions_) {
    if (!p.replay_done) {
      ++replaying;
      notes.push_back("features: partition " + std::to_string(n) +
                      " rebuilding its history (replaying the log up to offset " +
                      std::to_string(p.score_from) + ")");
    }
    if (!p.log_complete) {
      ++incomplete;
      notes.push_back("features: partition " + std::to_string(n) +
                      " log no longer holds its full history; scores are marked "
                      "\"history\":\"partial\" until the windows pass its first record");
    }
  }
  replaying_partitions_.set(static_cast<double>(replaying));
  incomplete_partitions_.set(static_cast<double>(incomplete));
  std::lock_guard<std::mutex> lock(notes_mutex_);
  notes_ = std::move(notes);
}

std::vector<std::string> StreamFeatures::readiness_notes() const {
  std::lock_guard<std::mutex> lock(notes_mutex_);
  return notes_;
}

}  // namespace vigil::features
