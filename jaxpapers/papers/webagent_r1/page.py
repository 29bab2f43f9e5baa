"""Simplified HTML: the page text the agent reads, with numbered interactive elements.

Follows the reference's observation (weizhepei/WebAgent-R1, `Eval/browser_env/html_tools/`,
WebRL's 'xml' prompt: `<tag id="k" attr="...">content </tag>`, scripts/styles dropped, only
meaningful content kept), made shorter for a small character-level policy:

- Element ids are the order of `INTERACTIVE_XPATH` over the page, from 0. The same expression runs
  in lxml (the `sim` backend) and in a browser's `document.evaluate` (the Chromium backend), so the
  number the agent sees names the same node in both.
- Only interactive elements are written as tags (`<a id="3">Red mug</a>`, `<input id="4"
  placeholder="Search" value="mug">`, `<select id="5" value="Shipped">Pending|Shipped</select>`),
  plus headings (`<h1>`..`<h3>`). Other text is plain, one line per block element.
- Form state comes only from attributes: `value`, `checked`, `selected` on `<option>` (else the
  first option, as a browser shows it), a textarea's text. A live browser's form state must be
  written into these attributes before calling `simplify`; then both backends share this function.
- No CSS is evaluated: an element is dropped only for the `hidden` attribute, `aria-hidden="true"`
  or `type="hidden"`. Generated sites never hide interactive elements with CSS.
"""
from __future__ import annotations

import dataclasses
import re

from lxml import etree
from lxml import html as lxml_html

# Interactive elements, in document order (an XPath union is returned in document order, also by
# `document.evaluate(..., XPathResult.ORDERED_NODE_SNAPSHOT_TYPE)`).
INTERACTIVE_XPATH = ("//a[@href] | //button | //input[not(@type='hidden')] | //select | "
                     "//textarea")

_SKIP = frozenset({'script', 'style', 'head', 'noscript', 'template', 'title', 'meta', 'link'})
_BLOCK = frozenset({'address', 'article', 'aside', 'blockquote', 'br', 'dd', 'div', 'dl', 'dt',
                    'fieldset', 'footer', 'form', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'header',
                    'hr', 'li', 'main', 'nav', 'ol', 'p', 'section', 'table', 'tr', 'ul', 'body'})
_HEADINGS = frozenset({'h1', 'h2', 'h3'})
_BUTTON_TYPES = frozenset({'submit', 'button', 'reset', 'image'})
_TOGGLE_TYPES = frozenset({'checkbox', 'radio'})


@dataclasses.dataclass(frozen=True)
class Element:
  """One interactive element as the agent sees it."""
  index: int                 # position in INTERACTIVE_XPATH order; the agent's element id
  tag: str                   # a, button, input, select, textarea
  kind: str                  # link, button, input, checkbox, radio, select, textarea
  label: str = ''            # visible text, aria-label, <label for>, placeholder or name
  name: str = ''             # form field name
  href: str = ''             # links only, as written in the page
  options: tuple[str, ...] = ()  # selects only: option labels
  value: str = ''            # current value (a select's selected option label)
  checked: bool = False      # checkboxes and radios

  @property
  def id(self) -> str:
    return str(self.index)


@dataclasses.dataclass(frozen=True)
class Page:
  text: str                        # the observation
  elements: dict[str, Element]     # element id -> Element

  def find(self, kind: str | None = None, label: str | None = None, contains: str | None = None
           ) -> Element | None:
    """The first element of `kind` whose label equals `label` (or contains `contains`), any
    case."""
    for el in self.elements.values():
      low = el.label.lower()
      if kind is not None and el.kind != kind:
        continue
      if label is not None and low != label.lower():
        continue
      if contains is not None and contains.lower() not in low:
        continue
      return el
    return None


def parse(html: str) -> lxml_html.HtmlElement:
  """The document root of an HTML string (an empty page for empty input)."""
  html = html.strip() or '<html><body></body></html>'
  return lxml_html.document_fromstring(html)


def interactive(root) -> list:
  """The interactive nodes of a parsed document, in element-id order."""
  return root.xpath(INTERACTIVE_XPATH)


def squash(text: str) -> str:
  return re.sub(r'\s+', ' ', text or '').strip()


def node_text(node) -> str:
  """Whitespace-normalised text content (what the agent reads inside an element)."""
  return squash(node.text_content())


def option_label(option) -> str:
  return squash(option.get('label') or option.text_content())


def selected_option(select):
  """The option a browser shows as selected: the last with `selected`, else the first."""
  options = select.xpath('.//option')
  chosen = [o for o in options if o.get('selected') is not None]
  return chosen[-1] if chosen else (options[0] if options else None)


def option_value(option) -> str:
  value = option.get('value')
  return option_label(option) if value is None else value


def element_kind(node) -> str:
  tag = node.tag
  if tag == 'a':
    return 'link'
  if tag == 'input':
    kind = (node.get('type') or 'text').lower()
    if kind in _BUTTON_TYPES:
      return 'button'
    return kind if kind in _TOGGLE_TYPES else 'input'
  return tag  # button, select, textarea


def _label_for(node, root) -> str:
  """Text of a `<label for=...>` naming this node, or of an enclosing `<label>`."""
  node_id = node.get('id')
  if node_id:
    for label in root.xpath('//label[@for=$i]', i=node_id):
      return node_text(label)
  for parent in node.iterancestors('label'):
    return node_text(parent)
  return ''


def describe(node, index: int, root) -> Element:
  """The Element for one interactive node."""
  kind = element_kind(node)
  options, checked = (), False
  if kind == 'link':
    label = node_text(node) or node.get('aria-label') or node.get('title') or ''
    value = ''
  elif kind == 'button':
    label = (node_text(node) if node.tag == 'button' else node.get('value', '')) or \
        node.get('aria-label') or node.get('title') or ''
    value = node.get('value', '')
  elif kind == 'select':
    options = tuple(option_label(o) for o in node.xpath('.//option'))
    chosen = selected_option(node)
    value = option_label(chosen) if chosen is not None else ''
    label = node.get('aria-label') or _label_for(node, root) or node.get('name', '')
  else:
    value = node.text_content() if kind == 'textarea' else node.get('value', '')
    checked = node.get('checked') is not None
    label = (node.get('aria-label') or _label_for(node, root) or node.get('placeholder')
             or node.get('name', ''))
  return Element(index=index, tag=node.tag, kind=kind, label=squash(label),
                 name=node.get('name', ''), href=node.get('href', '') if kind == 'link' else '',
                 options=options, value=value, checked=checked)


def _attr(key: str, value: str) -> str:
  return f' {key}="{squash(value)}"'


def _render_element(el: Element, node) -> str:
  """The tag the agent sees for an interactive element."""
  if el.kind in ('link', 'button'):
    tag = 'button' if el.kind == 'button' else 'a'
    return f'<{tag} id="{el.index}">{el.label}</{tag}>'
  if el.kind == 'select':
    return f'<select id="{el.index}"{_attr("value", el.value)}>{"|".join(el.options)}</select>'
  attrs = ''
  if el.kind in _TOGGLE_TYPES:
    attrs += _attr('type', el.kind) + (' checked' if el.checked else '')
  else:
    input_type = (node.get('type') or 'text').lower()
    if el.tag == 'input' and input_type != 'text':
      attrs += _attr('type', input_type)
    hint = node.get('placeholder') or node.get('aria-label') or ''
    if hint:
      attrs += _attr('placeholder', hint)
    if el.value:
      attrs += _attr('value', el.value)
  if el.tag == 'textarea':
    return f'<textarea id="{el.index}"{attrs}></textarea>'
  return f'<input id="{el.index}"{attrs}>'


def _hidden(node) -> bool:
  return (node.get('hidden') is not None or node.get('aria-hidden') == 'true'
          or (node.tag == 'input' and (node.get('type') or '').lower() == 'hidden'))


def _walk(node, ids: dict, out: list[str]) -> None:
  """Appends the text of `node`'s subtree to `out`; '\\n' marks block boundaries."""
  tag = node.tag if isinstance(node.tag, str) else ''
  if not tag or tag in _SKIP or _hidden(node):
    return
  block = tag in _BLOCK
  if block:
    out.append('\n')
  if node in ids:
    el = ids[node]
    out.append(' ' + _render_element(el, node) + ' ')
  elif tag in _HEADINGS:
    out.append(f'<{tag}>{node_text(node)}</{tag}>')
  else:
    if node.text:
      out.append(node.text)
    for child in node:
      _walk(child, ids, out)
      if child.tail:
        out.append(child.tail)
    if tag in ('td', 'th'):
      out.append(' ')
  if block:
    out.append('\n')


def simplify(html: str) -> Page:
  """The simplified page and its elements (ids in INTERACTIVE_XPATH order)."""
  root = parse(html)
  nodes = interactive(root)
  elements, ids = {}, {}
  for index, node in enumerate(nodes):
    el = describe(node, index, root)
    elements[el.id] = el
    ids[node] = el
  out: list[str] = []
  body = root.find('body')
  _walk(body if body is not None else root, ids, out)
  lines = (squash(line) for line in ''.join(out).split('\n'))
  return Page('\n'.join(line for line in lines if line), elements)


def to_string(root) -> str:
  """Serialises a parsed document back to HTML (with its current attributes)."""
  return etree.tostring(root, method='html', encoding='unicode')
