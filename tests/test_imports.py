"""Package code never imports the top-level `configs` package: a non-editable install has no
`configs/`, so such an import only works from a checkout. Config files are read by path
(`jaxpapers.core.config.load_file`), like the launcher's `--config`."""
import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / 'jaxpapers'


def _configs_imports(path: pathlib.Path) -> list[str]:
  """`import configs...`, `from configs...` and `import_module('configs...')`, at any depth."""
  found = []
  for node in ast.walk(ast.parse(path.read_text(), str(path))):
    names = []
    if isinstance(node, ast.Import):
      names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0:
      names = [node.module or '']
    elif (isinstance(node, ast.Call) and getattr(node.func, 'attr', getattr(node.func, 'id', ''))
          in ('import_module', '__import__') and node.args):
      arg = node.args[0]
      names = [arg.value if isinstance(arg, ast.Constant) else
               ''.join(v.value for v in getattr(arg, 'values', []) if isinstance(v, ast.Constant))]
    found += [f'{path.name}:{node.lineno} {n}' for n in names
              if n == 'configs' or str(n).startswith('configs.')]
  return found


def test_no_module_under_jaxpapers_imports_top_level_configs():
  found = [hit for path in sorted(PACKAGE.rglob('*.py')) for hit in _configs_imports(path)]
  assert not found, found


def test_configs_import_scan_catches_lazy_and_dynamic_imports(tmp_path):
  bad = tmp_path / 'bad.py'
  bad.write_text('import importlib\n'
                 'def f(name):\n'
                 '  from configs import relex\n'
                 '  importlib.import_module(f"configs.{name}")\n'
                 '  import configs.common\n')
  assert len(_configs_imports(bad)) == 3
