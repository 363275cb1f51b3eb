// EntityTable against std::map under random inserts, erases and sweeps, with hashes chosen
// to collide (long probe runs that wrap around the table's end, backward shifts across them).
#include "features/entity_table.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

namespace vigil::features {
namespace {

struct Value {
  int n = 0;
};

// A hash whose home is `slot` in a table of 16 slots (the table takes the top bits of
// hash * 0x9E3779B97F4A7C15); slot 15 is the last one at every size.
uint64_t hash_at(uint64_t slot) {
  const uint64_t k = 0x9E3779B97F4A7C15ULL;
  uint64_t inverse = k;  // Newton's iteration for k's inverse mod 2^64 (k is odd)
  for (int i = 0; i < 6; ++i) inverse *= 2 - k * inverse;
  return inverse * (slot == 15 ? ~uint64_t{0} : slot << 60);
}

// Few distinct hashes: every run of the table is long and crowded, and one wraps around.
uint64_t colliding_hash(int id) {
  if (id % 7 == 0) return hash_at(15);
  return static_cast<uint64_t>(id % 7) * 0x0123456789ABCDEFULL;
}

void expect_same(const EntityTable<Value>& table, const std::map<int, int>& want, int ids) {
  ASSERT_EQ(table.size(), want.size());
  for (int id = 0; id < ids; ++id) {
    const auto* node = table.find(std::to_string(id), colliding_hash(id));
    auto it = want.find(id);
    if (it == want.end()) {
      EXPECT_EQ(node, nullptr) << "id " << id;
    } else {
      ASSERT_NE(node, nullptr) << "id " << id;
      EXPECT_EQ(node->value.n, it->second) << "id " << id;
    }
  }
  size_t seen = 0;
  table.for_each([&](const EntityTable<Value>::Node& node) {
    ++seen;
    auto it = want.find(std::stoi(node.id));
    ASSERT_NE(it, want.end()) << node.id;
    EXPECT_EQ(node.value.n, it->second);
  });
  EXPECT_EQ(seen, want.size());
}

TEST(EntityTableTest, RandomInsertsErasesAndSweepsFindWhatAMapFinds) {
  constexpr int kIds = 120;
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int> who(0, kIds - 1), op(0, 99);
  EntityTable<Value> table;
  std::map<int, int> want;
  for (int step = 0; step < 20000; ++step) {
    const int id = who(rng);
    const uint64_t h = colliding_hash(id);
    const int o = op(rng);
    if (o < 55) {  // insert or update, as EntityWindows::observe does
      auto* node = table.find(std::to_string(id), h);
      if (node == nullptr) node = table.insert(std::to_string(id), h);
      node->value.n = step;
      want[id] = step;
    } else if (o < 99) {
      EXPECT_EQ(table.erase(std::to_string(id), h), want.erase(id) == 1) << "id " << id;
    } else {  // a sweep: every entry of an id below the cut goes
      const int cut = who(rng) / 4;
      const size_t dropped =
          table.erase_if([&](const auto& node) { return std::stoi(node.id) < cut; });
      size_t expected = 0;
      for (auto it = want.begin(); it != want.end() && it->first < cut;) {
        it = want.erase(it);
        ++expected;
      }
      EXPECT_EQ(dropped, expected);
    }
    expect_same(table, want, kIds);  // after every change: a rehash would hide a lost entry
    if (::testing::Test::HasFailure()) return;
  }
  expect_same(table, want, kIds);
}

TEST(EntityTableTest, ErasingAnyEntryOfARunThatWrapsAroundLeavesTheOthersFindable) {
  // Homes in a table of 16 whose runs wrap around from slot 15 to slot 0, with entries away
  // from their home and at it on both sides of the wrap.
  const std::vector<std::vector<uint64_t>> layouts = {{14, 15, 15, 15, 0, 0, 1}, {14, 15, 0, 1, 1}};
  for (const auto& homes : layouts) {
    for (size_t gone = 0; gone < homes.size(); ++gone) {
      EntityTable<Value> table;
      for (size_t i = 0; i < homes.size(); ++i) {
        table.insert(std::to_string(i), hash_at(homes[i]));
      }
      ASSERT_TRUE(table.erase(std::to_string(gone), hash_at(homes[gone])));
      for (size_t i = 0; i < homes.size(); ++i) {
        EXPECT_EQ(table.find(std::to_string(i), hash_at(homes[i])) != nullptr, i != gone)
            << "layout of " << homes.size() << ": entry " << i << " after erasing " << gone;
      }
    }
  }
}

TEST(EntityTableTest, ValuesKeepTheirAddressWhileTheTableGrowsAndShrinks) {
  EntityTable<Value> table;
  auto* first = table.insert("0", colliding_hash(0));
  first->value.n = 42;
  for (int id = 1; id < 5000; ++id) table.insert(std::to_string(id), colliding_hash(id));
  EXPECT_EQ(table.find("0", colliding_hash(0)), first);
  table.erase_if([](const auto& node) { return node.id != "0"; });
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(table.find("0", colliding_hash(0)), first);
  EXPECT_EQ(first->value.n, 42);
  EXPECT_EQ(table.find_by_hash(colliding_hash(0)), first);
  EXPECT_EQ(table.find("1", colliding_hash(1)), nullptr);
}

}  // namespace
}  // namespace vigil::features
