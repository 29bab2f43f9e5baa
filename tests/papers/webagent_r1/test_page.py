"""Simplified HTML: element ids follow INTERACTIVE_XPATH, form state comes from attributes."""
from lxml import etree
import pytest

from jaxpapers.papers.webagent_r1 import page
from jaxpapers.papers.webagent_r1 import sim
from jaxpapers.papers.webagent_r1 import sites

HTML = '''<html><head><title>T</title><style>p {color: red}</style><script>var x = 1;</script>
</head><body><h1>Store</h1>
<nav><a href="/">Home</a> <a>no href</a> <a href="/cart">Cart (2)</a></nav>
<form action="/search"><input type="hidden" name="t" value="1">
<input name="q" placeholder="Search" value="mug"><button>Go</button></form>
<div hidden><p>secret</p></div>
<ul><li><a href="/p/1">Red Mug</a> $12.00</li><li>Blue <b>Cup</b> $3</li></ul>
<label for="c">Color</label><select id="c" name="color"><option>Red</option>
<option selected>Blue</option></select>
<select name="size" aria-label="Size"><option value="s">Small</option><option>Large</option>
</select>
<input type="checkbox" name="gift" checked> Gift <input type="checkbox" name="wrap">
<textarea name="note" aria-label="Note">hello there</textarea>
<input type="submit" value="Save"></body></html>'''


@pytest.fixture(scope='module')
def simple():
  return page.simplify(HTML)


def test_xpath_is_xpath_1_and_skips_hidden_inputs_and_bare_anchors():
  etree.XPath(page.INTERACTIVE_XPATH)  # compiles as XPath 1.0
  nodes = page.interactive(page.parse(HTML))
  assert [n.tag for n in nodes] == ['a', 'a', 'input', 'button', 'a', 'select', 'select',
                                    'input', 'input', 'textarea', 'input']
  assert all(n.get('type') != 'hidden' for n in nodes)


def test_simplify_numbers_elements_in_xpath_order(simple):
  nodes = page.interactive(page.parse(HTML))
  assert list(simple.elements) == [str(i) for i in range(len(nodes))]
  for k, node in enumerate(nodes):
    assert simple.elements[str(k)].tag == node.tag
    assert f'id="{k}"' in simple.text
  ids = [int(x) for x in __import__('re').findall(r'id="(\d+)"', simple.text)]
  assert ids == sorted(ids)  # the text shows them in document order


def test_simplify_shows_form_state_from_attributes(simple):
  el = simple.elements
  assert (el['2'].kind, el['2'].label, el['2'].value) == ('input', 'Search', 'mug')
  assert 'value="mug"' in simple.text
  assert (el['5'].label, el['5'].options, el['5'].value) == ('Color', ('Red', 'Blue'), 'Blue')
  assert el['6'].value == 'Small'  # no `selected`: the first option, as a browser shows it
  assert '<select id="5" value="Blue">Red|Blue</select>' in simple.text
  assert el['7'].checked and not el['8'].checked
  assert '<input id="7" type="checkbox" checked>' in simple.text
  assert '<input id="8" type="checkbox">' in simple.text
  assert (el['9'].kind, el['9'].value) == ('textarea', 'hello there')
  assert (el['10'].kind, el['10'].label) == ('button', 'Save')


def test_simplify_keeps_content_drops_scripts_styles_and_hidden(simple):
  assert '<h1>Store</h1>' in simple.text
  assert '<a id="4">Red Mug</a> $12.00' in simple.text
  assert 'Blue Cup $3' in simple.text
  for gone in ('var x', 'color: red', 'secret', '<title>'):
    assert gone not in simple.text
  assert '<a id="0">Home</a> no href <a id="1">' in simple.text  # an anchor without href: text
  assert simple.elements['4'].href == '/p/1'


def test_simplify_empty_page():
  p = page.simplify('')
  assert p.text == '' and p.elements == {}


def test_page_find_by_kind_and_label(simple):
  assert simple.find('link', 'red mug').id == '4'
  assert simple.find('button', 'Go').id == '3'
  assert simple.find('link', contains='cart').id == '1'
  assert simple.find('button', 'Red Mug') is None


@pytest.mark.parametrize('path', ['/shop/', '/shop/category/Kitchen', '/shop/search?q=red',
                                  '/shop/product/101', '/forum/', '/forum/b/cooking',
                                  '/forum/t/101', '/admin/orders', '/admin/order/1042',
                                  '/admin/customers', '/admin/customer/3'])
def test_site_pages_stay_short(path):
  b = sim.SimBackend(sites.make_app(0))
  b.goto(path)
  text = b.observe().text
  assert 100 < len(text) < 800, (path, len(text))
