// Comma-separated configuration lists ("a, b,c"): their items, blanks trimmed, empty items
// left out. Used by the config structs of several components (model.also_serve,
// kafka.routes, ...).
#pragma once

#include <string>
#include <vector>

namespace vigil {

// `s` without leading and trailing blanks (spaces, tabs).
inline std::string trimmed(std::string s) {
  s.erase(0, s.find_first_not_of(" \t"));
  s.erase(s.find_last_not_of(" \t") + 1);
  return s;
}

// The items of a comma-separated list, each trimmed; empty ones are left out.
inline std::vector<std::string> split_commas(const std::string& list) {
  std::vector<std::string> items;
  size_t begin = 0;
  while (begin <= list.size()) {
    size_t end = list.find(',', begin);
    if (end == std::string::npos) end = list.size();
    std::string item = trimmed(list.substr(begin, end - begin));
    if (!item.empty()) items.push_back(std::move(item));
    begin = end + 1;
  }
  return items;
}

}  // namespace vigil
