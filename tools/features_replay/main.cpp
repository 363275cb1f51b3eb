// vigil-features: velocity features offline, with the library the service computes them with
// (src/features), so that a training set has exactly the numbers scoring will see.
//
//   vigil-features replay --spec features.yaml --in events.jsonl [--reports reports.jsonl]
//                         --out features.csv [--column tx_fraud]...
//   vigil-features hash --spec features.yaml
//
// replay reads raw transactions (one JSON object per line, in log order: see
// src/codec/raw_transaction.h) and writes one CSV row per accepted transaction:
//   transaction_id, <entity>, terminal_id, <time>, <the spec's features...>, history,
//   <each --column, copied from the event>
// history is "complete" or "partial" (see src/features/entity_windows.h). A line the service
// would dead-letter is skipped, and its line number and reason go to stderr.
//
// With terminal features (the spec's `terminal`), --reports names the fraud reports (one JSON
// object per line: src/codec/fraud_report.h). A terminal's counts are what every partition
// wrote, so they are taken from the whole file first, then every transaction is computed
// (src/features/terminal_days.h): what the service gives once every transaction older than
// the delay and every report made before the transaction's day has been read, and a refresh
// interval has passed. A transaction without a terminal_id is then refused, as the service
// refuses it.
//
// The file is replayed as one partition. The service keeps one history per partition; since
// the topic is keyed by the entity, an entity's transactions are all in one partition and get
// the same features, except a transaction late beyond the allowed lateness (marked partial
// either way), whose lateness is measured against its own partition's newest event.
#include <simdjson.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <climits>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "codec/fraud_report.h"
#include "codec/raw_transaction.h"
#include "features/entity_windows.h"
#include "features/feature_spec.h"
#include "features/terminal_days.h"

namespace {

using vigil::features::EntityWindows;
using vigil::features::FeatureSpec;
using vigil::features::FraudReports;
using vigil::features::TerminalDays;
using vigil::features::utc_day;

// CSV-quotes `s` when it needs it.
std::string csv(std::string_view s) {
  if (s.find_first_of(",\"\n\r") == std::string_view::npos) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// The shortest text that reads back as the same double.
void append_number(std::string& out, double v) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// A top-level field of `line` as CSV text: strings unquoted, other JSON as written; empty
// when absent.
std::string column(simdjson::ondemand::parser& parser, const std::string& line,
                   const std::string& name) {
  simdjson::padded_string padded(line);
  simdjson::ondemand::document doc;
  if (parser.iterate(padded).get(doc)) return "";
  simdjson::ondemand::value v;
  if (doc.find_field_unordered(name).get(v)) return "";
  std::string_view s;
  if (!v.get_string().get(s)) return csv(s);
  std::string_view raw = v.raw_json_token();
  while (!raw.empty() && (raw.back() == ' ' || raw.back() == '\n')) raw.remove_suffix(1);
  return csv(raw);
}

// "<path>:<line>: <reason>: <message>" on stderr, for a line the service would dead-letter.
void print_refused(const std::string& path, size_t line_no, const vigil::codec::DecodeStatus& st) {
  std::cerr << path << ":" << line_no << ": " << vigil::codec::to_string(st.code) << ": "
            << st.message << "\n";
}

vigil::codec::RawFields raw_fields(const FeatureSpec& spec) {
  vigil::codec::RawFields f{spec.entity, spec.time, spec.amount};
  f.require_terminal = spec.terminal.has_value();
  return f;
}

// The terminal counts: every transaction of `in_path` that decodes, then every fraud report
// of `reports_path`. Returns false when a file cannot be read.
bool load_terminal_days(const FeatureSpec& spec, const std::string& in_path,
                        const std::string& reports_path, TerminalDays& days) {
  std::ifstream in(in_path), reports(reports_path);
  if (!in || !reports) {
    std::cerr << "vigil-features: cannot read " << (!in ? in_path : reports_path) << "\n";
    return false;
  }
  vigil::codec::RawTransactionDecoder decoder(raw_fields(spec), /*max_event_bytes=*/65536);
  vigil::codec::RawTransaction tx;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && decoder.decode(line, INT64_MIN, tx).ok()) {
      days.add_transactions(tx.terminal_id, utc_day(tx.event_time_ms));
    }
  }
  vigil::codec::FraudReportDecoder report_decoder(/*max_event_bytes=*/65536);
  vigil::codec::FraudReport r;
  FraudReports counted;
  size_t line_no = 0, frauds = 0, genuine = 0, refused = 0;
  while (std::getline(reports, line)) {
    ++line_no;
    if (line.empty()) continue;
    auto st = report_decoder.decode(line, INT64_MIN, r);
    if (!st.ok()) {
      ++refused;
      print_refused(reports_path, line_no, st);
      continue;
    }
    if (!r.is_fraud) {
      ++genuine;  // a transaction is genuine unless reported as fraud
      continue;
    }
    ++frauds;
    counted.report(days, r.transaction_id, r.terminal_id, utc_day(r.event_time_ms),
                   utc_day(r.reported_at_ms));
  }
  std::cerr << "vigil-features: " << frauds << " fraud reports (" << counted.size()
            << " transactions), " << genuine << " genuine, " << refused << " lines refused, "
            << days.terminals() << " terminals\n";
  return true;
}

int replay(const FeatureSpec& spec, const std::string& in_path, const std::string& reports_path,
           const std::string& out_path, const std::vector<std::string>& columns) {
  std::optional<TerminalDays> terminal_days;
  if (spec.terminal) {
    if (reports_path.empty()) {
      std::cerr << "vigil-features: the spec has terminal features: --reports is required\n";
      return 2;
    }
    terminal_days.emplace(spec.terminal->windows);
    if (!load_terminal_days(spec, in_path, reports_path, *terminal_days)) return 2;
  }
  std::ifstream in(in_path);
  if (!in) {
    std::cerr << "vigil-features: cannot read " << in_path << "\n";
    return 2;
  }
  std::ofstream file;
  if (out_path != "-") {
    file.open(out_path);
    if (!file) {
      std::cerr << "vigil-features: cannot write " << out_path << "\n";
      return 2;
    }
  }
  std::ostream& out = out_path == "-" ? std::cout : file;
  vigil::codec::RawTransactionDecoder decoder(raw_fields(spec), /*max_event_bytes=*/65536);
  EntityWindows windows(spec);
  simdjson::ondemand::parser column_parser;

  std::string row = "transaction_id," + csv(spec.entity) + ",terminal_id," + csv(spec.time);
  for (const auto& n : spec.output_names()) row += "," + csv(n);
  row += ",history";
  for (const auto& c : columns) row += "," + csv(c);
  out << row << "\n";

  vigil::codec::RawTransaction tx;
  const size_t customer_width = windows.width();
  std::vector<double> f(customer_width +
                        (spec.terminal ? 2 * spec.terminal->windows.windows_days.size() : 0));
  std::string line;
  size_t line_no = 0, written = 0, refused = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    // No Kafka timestamp offline: the future-time limit is the service's to apply.
    auto st = decoder.decode(line, INT64_MIN, tx);
    if (!st.ok()) {
      ++refused;
      print_refused(in_path, line_no, st);
      continue;
    }
    const bool complete = windows.observe({tx.entity, tx.event_time_ms, tx.amount}, f.data());
    if (terminal_days) {
      terminal_days->features(tx.terminal_id, utc_day(tx.event_time_ms), f.data() + customer_width);
    }
    row = csv(tx.transaction_id) + "," + csv(tx.entity) + "," + csv(tx.terminal_id) + "," +
          std::to_string(tx.event_time_ms);
    for (double v : f) {
      row += ',';
      append_number(row, v);
    }
    row += complete ? ",complete" : ",partial";
    for (const auto& c : columns) row += "," + column(column_parser, line, c);
    out << row << "\n";
    ++written;
  }
  out.flush();
  const auto fig = windows.figures();
  std::cerr << "vigil-features: " << written << " rows, " << refused << " lines refused, "
            << fig.partial << " partial, spec " << spec.hash() << "\n";
  return out ? 0 : 2;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"velocity features offline, computed by vigil's own feature library"};
  app.require_subcommand(1);
  std::string spec_path, in_path, reports_path, out_path = "-";
  std::vector<std::string> columns;
  auto* rep = app.add_subcommand("replay", "raw transactions (JSON lines) -> features (CSV)");
  rep->add_option("--spec", spec_path, "features.yaml")->required();
  rep->add_option("--in", in_path, "raw transactions, one JSON object per line")->required();
  rep->add_option("--reports", reports_path,
                  "fraud reports, one JSON object per line (for terminal features)");
  rep->add_option("--out", out_path, "CSV file ('-': stdout)")->capture_default_str();
  rep->add_option("--column", columns, "an event field copied into each row (e.g. a label)");
  auto* hash = app.add_subcommand("hash", "print the spec's hash (what model.yaml records)");
  hash->add_option("--spec", spec_path, "features.yaml")->required();
  CLI11_PARSE(app, argc, argv);

  auto spec = vigil::features::load_feature_spec(spec_path);
  if (!spec.ok()) {
    std::cerr << "vigil-features: " << spec.error() << "\n";
    return 2;
  }
  if (hash->parsed()) {
    std::cout << spec->hash() << "\n";
    return 0;
  }
  return replay(*spec, in_path, reports_path, out_path, columns);
}
