// Raw transactions for the velocity-feature tests, and their features computed by brute
// force from the log, independently of src/features: what every score must carry.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "support/kafka_test_util.h"

namespace vigil::testing {

struct RawTx {
  std::string id;
  std::string customer;
  int64_t time_ms = 0;
  double amount = 0.0;
  std::string terminal;  // empty: "M1"
};

// `n` transactions ("<prefix><i>") of `customers` customers over about `days` days ending
// two days ago (the records' Kafka timestamps are now: none is in the future); about every
// tenth a few hours out of order (within a day of lateness).
std::vector<RawTx> make_raw_transactions(size_t n, size_t customers, int days, uint64_t seed,
                                         const std::string& prefix = "v-");

// Spreads the transactions over `terminals` terminals ("M<k>"), each one's chosen from its id:
// the same transactions get the same terminals, whatever else was generated.
void assign_terminals(std::vector<RawTx>& txs, size_t terminals);

// The record as upstream sends it.
std::string raw_json(const RawTx& t);
// (customer, JSON) of txs[from, to): keyed by customer, as the input topic is.
std::vector<std::pair<std::string, std::string>> keyed_by_customer(const std::vector<RawTx>& txs,
                                                                   size_t from, size_t to);

// The features of every transaction of `log` (in log order), in the order of
// models/fraud_velocity/features.yaml: tx_amount, tx_during_weekend, tx_during_night, then
// count and mean amount over 1, 7 and 30 days of the customer's transactions read so far
// with event time in (t - W, t]; amounts as float32, as the model reads them.
std::vector<std::vector<double>> reference_features(const std::vector<RawTx>& log);

// Checks each score record whose key is a transaction of `log`: "feature_spec" equal to
// `spec_hash`, "history" complete, every feature in `names` within 1e-6 (relative) of the
// reference. Failures are reported with ADD_FAILURE (the first few). Returns the records
// checked; `worst` gets the worst relative error.
size_t check_feature_records(const std::vector<TestRecord>& records, const std::vector<RawTx>& log,
                             const std::vector<std::string>& names, const std::string& spec_hash,
                             double* worst = nullptr);

}  // namespace vigil::testing
