// FeatureSpec: which velocity features are computed from raw transactions, read from
// features.yaml beside model.yaml in the model's repository.
//
//   # features.yaml
//   entity: customer_id        # the event field whose history is kept (the topic's key)
//   time: event_time_ms        # the event field with the event time (ms since the epoch)
//   amount: amount             # the event field with the amount
//   prefix: customer           # names the features: customer_nb_tx_1d, ...
//   windows_days: [1, 7, 30]   # for each: the count and the mean amount in the window
//   calendar: true             # tx_during_weekend and tx_during_night (UTC)
//   allowed_lateness_ms: 86400000
//   max_entities_per_partition: 2000000
//   terminal:                  # optional: terminal risk (terminal_days.h)
//     field: terminal_id       # the event field naming the terminal
//     prefix: terminal         # names the features: terminal_nb_tx_1d, terminal_risk_1d, ...
//     delay_days: 7            # the labels of the last 7 days are not known yet
//     windows_days: [1, 7, 30]
//
// The features of a transaction at event time t of entity e, in output_names() order:
//   tx_amount, tx_during_weekend (Saturday or Sunday, UTC), tx_during_night (UTC hour < 6),
//   then for each window W (days): <prefix>_nb_tx_<W>d and <prefix>_avg_amount_<W>d, the
//   count and mean amount of e's transactions with event time in (t - W, t], the current one
//   included, among those read so far in the partition's log order; then, with `terminal`,
//   for each of its windows W: <prefix>_nb_tx_<W>d and <prefix>_risk_<W>d of the
//   transaction's terminal, over the W whole UTC days before day(t) - delay_days, with the
//   frauds reported before day(t) (see terminal_days.h).
//
// hash() names the spec's meaning (its canonical text), not its formatting: a model trained
// on one spec records that hash in its model.yaml, and every score records the hash of the
// spec it was computed with.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "features/terminal_days.h"

namespace vigil::features {

struct FeatureSpec {
  // The event field naming whose history a transaction extends.
  std::string entity = "customer_id";
  // The event field with the event time, in ms since the epoch (UTC).
  std::string time = "event_time_ms";
  // The event field with the transaction's amount.
  std::string amount = "amount";
  // Prefix of the per-entity feature names.
  std::string prefix = "customer";
  // The most event time one entity's kept history may span (the longest window plus the
  // allowed lateness): 49 days, so that event times are kept as 32-bit ms offsets (8 bytes
  // an event with its amount; see entity_windows.h).
  static constexpr int64_t kMaxHistorySpanMs = 49LL * 86'400'000;

  // Window lengths in days, increasing, each at least 1 (see kMaxHistorySpanMs).
  std::vector<int> windows_days = {1, 7, 30};
  // Whether tx_during_weekend and tx_during_night are computed.
  bool calendar = true;
  // How far (event time) behind the newest event of its partition a transaction may be and
  // still be computed over its whole history; an older one is computed over what is kept and
  // marked partial. The longest window plus this is at most kMaxHistorySpanMs.
  int64_t allowed_lateness_ms = 86'400'000;
  // Most entities kept per partition; above it the least recently seen entity is dropped
  // (counted), and transactions of entities first seen afterwards are marked partial.
  size_t max_entities_per_partition = 2'000'000;

  // Terminal risk features, from the transactions of every partition and the fraud reports.
  struct Terminal {
    // The event field naming the transaction's terminal.
    std::string field = "terminal_id";
    // Prefix of the terminal feature names.
    std::string prefix = "terminal";
    // The delay and the windows, in whole days.
    TerminalWindows windows;
    // The most days a terminal window may reach back (delay plus the longest window).
    static constexpr int kMaxReachDays = 366;
  };
  std::optional<Terminal> terminal;

  // The longest window, in ms.
  int64_t longest_window_ms() const;
  // The features' names, in the order they are computed.
  std::vector<std::string> output_names() const;
  // How many of them come from the entity's own history (tx_amount, the calendar and the
  // entity windows: EntityWindows); the terminal features follow them.
  size_t entity_feature_count() const { return 1 + (calendar ? 2 : 0) + 2 * windows_days.size(); }
  // One line per field, in a fixed order: what hash() covers.
  std::string canonical() const;
  // "fnv1a64:" and 16 hex digits of canonical().
  std::string hash() const;
};

// Parses features.yaml text; every problem is listed (one per line), each naming the file
// (`where`) and the key.
Result<FeatureSpec> parse_feature_spec(const std::string& yaml_text, const std::string& where);
// Reads and parses the file at `path`.
Result<FeatureSpec> load_feature_spec(const std::string& path);

}  // namespace vigil::features
