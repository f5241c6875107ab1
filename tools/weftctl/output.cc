#include "tools/weftctl/output.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/net.h"
#include "common/tls_client.h"

namespace weft::weftctl {
namespace {

std::string Expiry(const v1::Lease& l) {
  if (l.reserved()) return "never (reserved)";
  if (!l.has_expiration()) return "-";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(l.expiration().seconds()),
                          absl::UTCTimeZone());
}

// A JSON field that holds JSON text: the value it holds when it parses, else
// the text itself (unreadable, too deep); null when empty.
json::OrderedJson Embedded(const std::string& text, absl::string_view what) {
  if (text.empty()) return nullptr;
  if (absl::StatusOr<json::OrderedJson> j = json::ParseOrdered(text, what); j.ok()) return *std::move(j);
  return text;
}

// A mapping key: plain when it is a simple word, else a quoted scalar.
std::string YamlKey(const std::string& key) {
  bool plain = !key.empty() && absl::ascii_isalpha(static_cast<unsigned char>(key[0]));
  for (char c : key) plain &= absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  return plain ? key : json::Dump(json::OrderedJson(key));
}

// The depth is bounded by json::ParseOrdered's limit on embedded JSON.
void AppendYaml(const json::OrderedJson& j, int indent, std::string* out) {
  const std::string pad(indent, ' ');
  auto scalar = [](const json::OrderedJson& v) { return v.is_null() ? std::string("null") : json::Dump(v); };
  auto nested = [](const json::OrderedJson& v) { return (v.is_object() || v.is_array()) && !v.empty(); };
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      absl::StrAppend(out, pad, YamlKey(it.key()), ":");
      if (nested(it.value())) {
        absl::StrAppend(out, "\n");
        AppendYaml(it.value(), indent + 2, out);
      } else {
        absl::StrAppend(out, " ", scalar(it.value()), "\n");
      }
    }
  } else if (j.is_array()) {
    for (const auto& v : j) {
      if (nested(v)) {
        // "- " then the first line of the nested block on the same line.
        std::string inner;
        AppendYaml(v, indent + 2, &inner);
        absl::StrAppend(out, pad, "- ", inner.substr(indent + 2));
      } else {
        absl::StrAppend(out, pad, "- ", scalar(v), "\n");
      }
    }
  } else {
    absl::StrAppend(out, pad, scalar(j), "\n");
  }
}

// json (one line) or yaml.
std::string Structured(const json::OrderedJson& j, OutputFormat format) {
  return format == OutputFormat::kYaml ? Yaml(j) : json::Dump(j) + "\n";
}

bool IsStructured(OutputFormat format) { return format == OutputFormat::kJson || format == OutputFormat::kYaml; }

// Sort key of a lease: its IPv4 subnet's address (IPv6-only leases after all).
uint64_t SubnetOrder(const v1::Lease& l) {
  absl::StatusOr<IPv4Net> net = IPv4Net::Parse(l.subnet());
  return net.ok() ? net->network().value() : uint64_t{1} << 32;
}

std::string LeaseTable(const std::vector<const v1::Lease*>& leases, bool wide) {
  auto dash = [](const std::string& v) { return v.empty() ? std::string("-") : v; };
  std::vector<std::vector<std::string>> rows;
  if (wide) {
    rows.push_back({"SUBNET", "IPV6-SUBNET", "PUBLIC-IP", "PUBLIC-IPV6", "NODE", "BACKEND", "EXPIRES", "REVISION",
                    "BACKEND-DATA"});
  } else {
    rows.push_back({"SUBNET", "PUBLIC-IP", "NODE", "BACKEND", "EXPIRES"});
  }
  for (const v1::Lease* l : leases) {
    if (wide) {
      rows.push_back({dash(l->subnet()), dash(l->ipv6_subnet()), dash(l->public_ip()), dash(l->public_ipv6()),
                      dash(l->node_name()), dash(l->backend_type()), Expiry(*l), absl::StrCat(l->revision()),
                      dash(l->backend_data())});
    } else {
      rows.push_back({l->subnet().empty() ? l->ipv6_subnet() : l->subnet(), dash(l->public_ip()),
                      dash(l->node_name()), dash(l->backend_type()), Expiry(*l)});
    }
  }
  return AlignedColumns(rows);
}

}  // namespace

std::string AlignedColumns(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows) {
    if (width.size() < r.size()) width.resize(r.size(), 0);
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  std::string out;
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) {
      out += r[i];
      if (i + 1 < r.size()) out += std::string(width[i] - r[i].size() + 2, ' ');
    }
    out += "\n";
  }
  return out;
}

json::OrderedJson LeaseJson(const v1::Lease& l) {
  json::OrderedJson j;
  j["subnet"] = l.subnet();
  if (!l.ipv6_subnet().empty()) j["ipv6_subnet"] = l.ipv6_subnet();
  j["public_ip"] = l.public_ip();
  if (!l.public_ipv6().empty()) j["public_ipv6"] = l.public_ipv6();
  j["node_name"] = l.node_name();
  j["backend_type"] = l.backend_type();
  // The controller stores BackendData as a JSON object: show it as one.
  j["backend_data"] = Embedded(l.backend_data(), "backend_data");
  j["reserved"] = l.reserved();
  if (l.has_expiration()) j["expiration"] = Expiry(l);
  j["revision"] = l.revision();
  return j;
}

std::string Yaml(const json::OrderedJson& j) {
  std::string out = "---\n";
  if ((j.is_object() || j.is_array()) && j.empty()) return out + (j.is_object() ? "{}\n" : "[]\n");
  AppendYaml(j, 0, &out);
  return out;
}

std::string FormatLease(const v1::Lease& lease, OutputFormat format) {
  if (IsStructured(format)) return Structured(LeaseJson(lease), format);
  return LeaseTable({&lease}, format == OutputFormat::kWide);
}

std::string FormatLeases(const v1::ListLeasesResponse& list, OutputFormat format) {
  // Numeric subnet order (10.1.9.0 before 10.1.10.0); IPv6-only leases last.
  std::vector<const v1::Lease*> leases;
  for (const v1::Lease& l : list.leases()) leases.push_back(&l);
  std::stable_sort(leases.begin(), leases.end(),
                   [](const v1::Lease* x, const v1::Lease* y) { return SubnetOrder(*x) < SubnetOrder(*y); });
  if (!IsStructured(format)) return LeaseTable(leases, format == OutputFormat::kWide);
  json::OrderedJson out;
  out["revision"] = list.revision();
  out["leases"] = json::OrderedJson::array();
  for (const v1::Lease* l : leases) out["leases"].push_back(LeaseJson(*l));
  return Structured(out, format);
}

json::OrderedJson StatusJson(const std::vector<EndpointStatus>& all) {
  json::OrderedJson out;
  out["endpoints"] = json::OrderedJson::array();
  const v1::GetStatusResponse* first = nullptr;
  for (const EndpointStatus& e : all) {
    json::OrderedJson j;
    j["address"] = e.address;
    j["reachable"] = e.rpc.ok();
    if (!e.rpc.ok()) {
      j["error"] = e.error;
    } else {
      if (first == nullptr) first = &e.status;
      j["version"] = e.status.version();
      j["commit"] = e.status.commit();
      j["replica"] = e.status.replica();
      j["leader"] = e.status.leader();
      j["store"] = e.status.store();
      j["store_location"] = e.status.store_location();
      j["revision"] = e.status.revision();
      j["store_healthy"] = e.status.store_problem().empty();
      if (!e.status.store_problem().empty()) j["store_problem"] = e.status.store_problem();
      j["watch_streams"] = e.status.watch_streams();
    }
    out["endpoints"].push_back(std::move(j));
  }
  if (first != nullptr) {
    out["network_config"] = Embedded(first->network_config(), "network config");
    out["backend_type"] = first->backend_type();
    const auto& p = first->pool();
    out["subnets"] = p.subnets();
    out["leases"] = p.leases();
    out["free"] = p.free();
    out["reserved"] = p.reserved();
    out["expiring_within_hour"] = p.expiring_within_hour();
  }
  return out;
}

std::string FormatStatus(const std::vector<EndpointStatus>& all, OutputFormat format) {
  if (IsStructured(format)) return Structured(StatusJson(all), format);
  std::vector<std::vector<std::string>> rows = {
      {"ENDPOINT", "REACHABLE", "VERSION", "LEADER", "STORE", "REVISION", "STORE-HEALTH", "WATCHES"}};
  const v1::GetStatusResponse* first = nullptr;
  std::string errors;
  for (const EndpointStatus& e : all) {
    if (!e.rpc.ok()) {
      rows.push_back({e.address, absl::StrCat("no: ", RpcCodeName(e.rpc.error_code())), "-", "-", "-", "-", "-", "-"});
      absl::StrAppend(&errors, "  ", e.error, "\n");
      continue;
    }
    const auto& st = e.status;
    if (first == nullptr) first = &st;
    const std::string commit = st.commit().size() > 12 ? st.commit().substr(0, 12) : st.commit();
    rows.push_back({e.address, "yes", absl::StrCat(st.version(), " (", commit, ")"), st.leader() ? "yes" : "no",
                    absl::StrCat(st.store(), " ", st.store_location()), absl::StrCat(st.revision()),
                    st.store_problem().empty() ? "ok" : st.store_problem(), absl::StrCat(st.watch_streams())});
  }
  std::string out = AlignedColumns(rows) + errors;
  if (first == nullptr) return out;
  std::string network = "(none set: weftctl config set FILE)";
  if (!first->network_config().empty()) {
    const json::OrderedJson cfg = Embedded(first->network_config(), "network config");
    network = cfg.is_string() ? first->network_config() : json::Dump(cfg);  // one line
  }
  const auto& p = first->pool();
  absl::StrAppend(
      &out, "\n",
      AlignedColumns({
          {"Network config:", network},
          {"Backend:", first->backend_type().empty() ? "-" : first->backend_type()},
          {"Subnets:", absl::StrCat(p.subnets(), " in the network: ", p.leases(), " leased, ", p.reserved(),
                                    " reserved, ", p.free(), " free")},
          {"Expiring within the hour:", absl::StrCat(p.expiring_within_hour())},
      }));
  if (p.ipv6_subnets() > 0) {
    absl::StrAppend(&out, AlignedColumns({{"IPv6 subnets:", absl::StrCat(p.ipv6_subnets(), " in the network, ",
                                                                         p.ipv6_free(), " free")}}));
  }
  return out;
}

}  // namespace weft::weftctl
