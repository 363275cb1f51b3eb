// How a component's configuration struct declares its keys: once, next to its fields.
//
//   struct HttpConfig {
//     int port = 8080;
//     ...
//     template <typename V>
//     void fields(V& v) {
//       v("port", port, "", "HTTP port (0 = ephemeral, see http.port_file)");
//       v.section("tls", tls);  // a nested struct with fields() of its own
//     }
//   };
//
// Each call names the key (relative to the struct's section), the field (its default is the
// member initializer), the unit ("ms", "bytes", ... or "" when the key says it all) and the
// description. src/config visits every component's fields() to load keys from YAML, the
// environment and flags, and to write --help, config/vigil.yaml and the README's table; a
// test fails when those files drift from the structs.
#pragma once

namespace vigil::config {

enum class FieldFlag {
  kNone,
  kSecret,  // redacted in --print-config and never logged
};

}  // namespace vigil::config
