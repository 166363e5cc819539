"""Generates everything derived from `proto/`.

- Python code (`*_pb2.py`, `*_pb2_grpc.py`, `.pyi`) into `services/gen/`, with the
  generated imports rooted at `services.gen` so that no other layer can reach it.
- The Envoy descriptor set (`--include_imports --include_source_info`) into
  `envoy/build/waqup.pb`, with google.rpc status and error details so that the
  transcoder can render `google.rpc.Status` bodies, and `grpc.health.v1` (taken
  from grpcio-health-checking, which ships no .proto) so that the edge can
  transcode the no-op health check used as the benchmark baseline.
- A `.buf/third_party` module for `buf lint`: the googleapis files as shipped by
  googleapis-common-protos, and `buf/validate/validate.proto` written from the
  descriptor that the installed protovalidate package embeds (types and
  extensions only: enough to resolve our imports).

Usage: python -m services.codegen [--lint]
Nothing here needs network.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import pathlib
import re
import shutil
import subprocess
import sys

from google.protobuf import descriptor_pb2

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTO = ROOT / "proto"
GEN = ROOT / "services" / "gen"
ENVOY_BUILD = ROOT / "envoy" / "build"
THIRD_PARTY = ROOT / ".buf" / "third_party"
DESCRIPTOR_SET = ENVOY_BUILD / "waqup.pb"
VALIDATE_SET = ENVOY_BUILD / "validate.binpb"

_GOOGLE_EXTRA = ("google/rpc/status.proto", "google/rpc/error_details.proto",
                 "google/type/money.proto")


def _site_dir(module: str) -> pathlib.Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"codegen: {module} is not installed")
    return pathlib.Path(next(iter(spec.submodule_search_locations)))


def _googleapis_root() -> pathlib.Path:
    return _site_dir("google.api").parent.parent


def _well_known_root() -> pathlib.Path:
    return _site_dir("grpc_tools") / "_proto"


def validate_descriptor() -> descriptor_pb2.FileDescriptorProto:
    """The FileDescriptorProto of buf/validate/validate.proto, read from protovalidate."""
    gen = _site_dir("protovalidate") / "_gen" / "buf" / "validate" / "validate_pb.py"
    for node in ast.parse(gen.read_text()).body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id == "_DESC"
            and isinstance(node.value, ast.Call)
        ):
            raw = node.value.args[0]
            if isinstance(raw, ast.Constant) and isinstance(raw.value, bytes):
                return descriptor_pb2.FileDescriptorProto.FromString(raw.value)
    raise SystemExit(f"codegen: no embedded descriptor found in {gen}")


def _write_validate_set(fd: descriptor_pb2.FileDescriptorProto) -> None:
    from google.protobuf import descriptor_pb2 as d
    from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2

    fds = descriptor_pb2.FileDescriptorSet()
    for mod in (d, duration_pb2, field_mask_pb2, timestamp_pb2):
        proto = descriptor_pb2.FileDescriptorProto()
        mod.DESCRIPTOR.CopyToProto(proto)
        fds.file.append(proto)
    fds.file.append(fd)
    VALIDATE_SET.write_bytes(fds.SerializeToString())


# --- a minimal .proto printer for the buf lint workspace ---------------------

_SCALARS = {
    descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE: "double",
    descriptor_pb2.FieldDescriptorProto.TYPE_FLOAT: "float",
    descriptor_pb2.FieldDescriptorProto.TYPE_INT64: "int64",
    descriptor_pb2.FieldDescriptorProto.TYPE_UINT64: "uint64",
    descriptor_pb2.FieldDescriptorProto.TYPE_INT32: "int32",
    descriptor_pb2.FieldDescriptorProto.TYPE_FIXED64: "fixed64",
    descriptor_pb2.FieldDescriptorProto.TYPE_FIXED32: "fixed32",
    descriptor_pb2.FieldDescriptorProto.TYPE_BOOL: "bool",
    descriptor_pb2.FieldDescriptorProto.TYPE_STRING: "string",
    descriptor_pb2.FieldDescriptorProto.TYPE_BYTES: "bytes",
    descriptor_pb2.FieldDescriptorProto.TYPE_UINT32: "uint32",
    descriptor_pb2.FieldDescriptorProto.TYPE_SFIXED32: "sfixed32",
    descriptor_pb2.FieldDescriptorProto.TYPE_SFIXED64: "sfixed64",
    descriptor_pb2.FieldDescriptorProto.TYPE_SINT32: "sint32",
    descriptor_pb2.FieldDescriptorProto.TYPE_SINT64: "sint64",
}
_LABELS = {
    descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL: "optional ",
    descriptor_pb2.FieldDescriptorProto.LABEL_REQUIRED: "required ",
    descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED: "repeated ",
}


def _field(f: descriptor_pb2.FieldDescriptorProto, in_oneof: bool) -> str:
    kind = _SCALARS.get(f.type) or f.type_name
    label = "" if in_oneof else _LABELS[f.label]
    return f"{label}{kind} {f.name} = {f.number};"


def _message(m: descriptor_pb2.DescriptorProto, indent: str) -> list[str]:
    out = [f"{indent}message {m.name} {{"]
    inner = indent + "  "
    for nested in m.nested_type:
        out += _message(nested, inner)
    for enum in m.enum_type:
        out += _enum(enum, inner)
    for r in m.extension_range:
        out.append(f"{inner}extensions {r.start} to {r.end - 1};")
    oneofs: dict[int, list[str]] = {}
    for f in m.field:
        if f.HasField("oneof_index") and not f.proto3_optional:
            oneofs.setdefault(f.oneof_index, []).append(_field(f, True))
        else:
            out.append(inner + _field(f, False))
    for index, fields in oneofs.items():
        out.append(f"{inner}oneof {m.oneof_decl[index].name} {{")
        out += [f"{inner}  {line}" for line in fields]
        out.append(f"{inner}}}")
    for r in m.reserved_range:
        out.append(f"{inner}reserved {r.start} to {r.end - 1};")
    out.append(f"{indent}}}")
    return out


def _enum(e: descriptor_pb2.EnumDescriptorProto, indent: str) -> list[str]:
    out = [f"{indent}enum {e.name} {{"]
    out += [f"{indent}  {v.name} = {v.number};" for v in e.value]
    out.append(f"{indent}}}")
    return out


def proto_source(fd: descriptor_pb2.FileDescriptorProto) -> str:
    """Types, fields and extensions of `fd` as .proto text (options and comments dropped)."""
    lines = [f'syntax = "{fd.syntax or "proto2"}";', f"package {fd.package};"]
    lines += [f'import "{dep}";' for dep in fd.dependency]
    for m in fd.message_type:
        lines += _message(m, "")
    for e in fd.enum_type:
        lines += _enum(e, "")
    by_extendee: dict[str, list[str]] = {}
    for ext in fd.extension:
        by_extendee.setdefault(ext.extendee, []).append("  " + _field(ext, False))
    for extendee, fields in by_extendee.items():
        lines += [f"extend {extendee} {{", *fields, "}"]
    return "\n".join(lines) + "\n"


def _write_third_party(fd: descriptor_pb2.FileDescriptorProto) -> None:
    if THIRD_PARTY.exists():
        shutil.rmtree(THIRD_PARTY)
    googleapis = _googleapis_root()
    for rel in (*(p.relative_to(googleapis).as_posix()
                  for p in (googleapis / "google" / "api").glob("*.proto")), *_GOOGLE_EXTRA):
        target = THIRD_PARTY / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(googleapis / rel, target)
    target = THIRD_PARTY / "buf" / "validate" / "validate.proto"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(proto_source(fd))


# --- protoc -------------------------------------------------------------------

_IMPORT = re.compile(r"^(from|import) (waqup|buf)([. ])", re.MULTILINE)


def _protoc(*args: str) -> None:
    from grpc_tools import protoc

    argv = ["grpc_tools.protoc", f"-I{PROTO}", f"-I{_googleapis_root()}",
            f"-I{_well_known_root()}", f"--descriptor_set_in={VALIDATE_SET}", *args]
    if protoc.main(argv) != 0:
        raise SystemExit("codegen: protoc failed")


def _append_health(path: pathlib.Path) -> None:
    """Add grpc_health/v1/health.proto to the descriptor set at `path` (it imports
    nothing)."""
    from grpc_health.v1 import health_pb2

    fds = descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes())
    health = descriptor_pb2.FileDescriptorProto.FromString(health_pb2.DESCRIPTOR.serialized_pb)
    if all(file.name != health.name for file in fds.file):
        fds.file.append(health)
    path.write_bytes(fds.SerializeToString())


def generate() -> None:
    ENVOY_BUILD.mkdir(parents=True, exist_ok=True)
    fd = validate_descriptor()
    _write_validate_set(fd)
    _write_third_party(fd)

    ours = sorted(p.relative_to(PROTO).as_posix() for p in PROTO.rglob("*.proto"))
    if GEN.exists():
        shutil.rmtree(GEN)
    GEN.mkdir(parents=True)
    _protoc(f"--python_out={GEN}", f"--pyi_out={GEN}", f"--grpc_python_out={GEN}",
            *ours, "buf/validate/validate.proto")
    for path in GEN.rglob("*.py*"):
        text = path.read_text()
        fixed = _IMPORT.sub(r"\1 services.gen.\2\3", text)
        if fixed != text:
            path.write_text(fixed)
    for directory in [GEN, *(p for p in GEN.rglob("*") if p.is_dir())]:
        (directory / "__init__.py").touch()

    _protoc(f"--descriptor_set_out={DESCRIPTOR_SET}", "--include_imports",
            "--include_source_info", *ours, *_GOOGLE_EXTRA)
    _append_health(DESCRIPTOR_SET)
    print(f"codegen: {len(ours)} proto files -> {GEN.relative_to(ROOT)}, "
          f"{DESCRIPTOR_SET.relative_to(ROOT)}")


def lint() -> None:
    buf = shutil.which("buf", path=str(pathlib.Path(sys.executable).parent)) or "buf"
    result = subprocess.run([buf, "lint"], cwd=ROOT, check=False)
    if result.returncode != 0:
        raise SystemExit("buf lint failed")
    print("buf lint: clean")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lint", action="store_true", help="run buf lint after generating")
    args = parser.parse_args()
    generate()
    if args.lint:
        lint()


if __name__ == "__main__":
    main()
