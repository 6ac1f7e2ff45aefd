"""The independent decoder: reads what the fakes received with Python's
protobuf and the code protoc generates from the vendored .proto files
(nothing of the daemon's own encoder), and prints it as JSON.

  otlp_decode.py GENERATED_DIR otlp|parca FILE...

otlp: per request, per resource profile: its attributes, and per profile
its sample type, unit, period, times, attributes and values summed per
stack. A stack's key is written as test/helpers/pprof-stacks.ts writes a
pprof sample's: "fn:line>fn:line;...|k=v,..." (leaf first; a location's
lines callee first).
parca: per request, per series: its labels and each raw profile's sha256.
"""
import hashlib
import json
import sys

sys.path.insert(0, sys.argv[1])
mode = sys.argv[2]


def any_value(v):
    kind = v.WhichOneof("value")
    return None if kind is None else getattr(v, kind)


def otlp(data):
    from opentelemetry.proto.collector.profiles.v1development import profiles_service_pb2

    req = profiles_service_pb2.ExportProfilesServiceRequest()
    req.ParseFromString(data)
    d = req.dictionary
    s = d.string_table

    def loc_key(i):
        loc = d.location_table[i]
        return ">".join("%s:%d" % (s[d.function_table[ln.function_index].name_strindex], ln.line) for ln in loc.lines)

    def attr(i):
        a = d.attribute_table[i]
        kind = a.value.WhichOneof("value")
        if kind == "string_value":
            return "%s=%s" % (s[a.key_strindex], a.value.string_value)
        return "%s=%d%s" % (s[a.key_strindex], a.value.int_value, s[a.unit_strindex])

    out = {
        "zero": {
            "string": s[0] == "",
            "mapping": d.mapping_table[0].ByteSize() == 0,
            "location": d.location_table[0].ByteSize() == 0,
            "function": d.function_table[0].ByteSize() == 0,
            "attribute": d.attribute_table[0].ByteSize() == 0,
            "stack": d.stack_table[0].ByteSize() == 0,
            "link": len(d.link_table) > 0 and not any(d.link_table[0].trace_id) and not any(d.link_table[0].span_id),
        },
        "resources": [],
    }
    for rp in req.resource_profiles:
        res = {"attributes": {kv.key: any_value(kv.value) for kv in rp.resource.attributes}, "scopes": []}
        for sp in rp.scope_profiles:
            profiles = []
            for p in sp.profiles:
                stacks = {}
                for smp in p.samples:
                    st = d.stack_table[smp.stack_index]
                    key = ";".join(loc_key(i) for i in st.location_indices) + "|" + ",".join(sorted(attr(i) for i in smp.attribute_indices))
                    stacks[key] = stacks.get(key, 0) + sum(smp.values)
                profiles.append({
                    "sample_type": s[p.sample_type.type_strindex],
                    "unit": s[p.sample_type.unit_strindex],
                    "period_type": s[p.period_type.type_strindex],
                    "period": p.period,
                    "time_unix_nano": str(p.time_unix_nano),
                    "duration_nano": str(p.duration_nano),
                    "profile_id": p.profile_id.hex(),
                    "attributes": [attr(i) for i in p.attribute_indices],
                    "stacks": stacks,
                })
            res["scopes"].append({"name": sp.scope.name, "version": sp.scope.version, "profiles": profiles})
        out["resources"].append(res)
    return out


def parca(data):
    from parca.profilestore.v1alpha1 import profilestore_pb2

    req = profilestore_pb2.WriteRawRequest()
    req.ParseFromString(data)
    return {
        "series": [
            {
                "labels": [[l.name, l.value] for l in series.labels.labels],
                "samples": [hashlib.sha256(smp.raw_profile).hexdigest() for smp in series.samples],
            }
            for series in req.series
        ]
    }


decode = otlp if mode == "otlp" else parca
result = []
for path in sys.argv[3:]:
    with open(path, "rb") as f:
        result.append(decode(f.read()))
json.dump(result, sys.stdout)
