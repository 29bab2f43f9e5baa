"""Every prompt string of InstructRAG, in one place (pinned against the reference by a test).

Reference: github.com/weizhepei/InstructRAG, `src/rag.json` (strings), `src/data_utils.py`
(`normalize_question`, `build_contexts`, `format_prompt`, `preprocess_for_rag`).

A prompt is a user turn `head + body` between the reference's Llama-3 `USER_PREFIX` and
`ASSISTANT_PREFIX`: `head` holds the instruction and demonstrations, `body` the documents and
the question (the reference tokenises them apart and cuts long inputs from the left of the
body, keeping the head; `encode` does the same).
  rationale synthesis  head = DEMO_PREFIX(question); body = documents +
                       RATIONALE_INSTRUCTION(question, answers) + the dataset's postfix
  InstructRAG-ICL      head = DEMO_TASK_INSTRUCTION + N x (question, rationale) + DEMO_POSTFIX;
                       body = documents + QUERY_PROMPT(question)
  InstructRAG-FT       head = ''; body = documents + QUERY_PROMPT(question)
`{answers}` is the gold list as Python prints it ("['Paris', 'paris']"), as the reference's
`format_map` over a list does.

Two ways to render the turn (`STYLES`): 'reference' writes the reference's raw strings after
the tokenizer's BOS (exactly the reference for Llama-3-Instruct); 'chat' puts `head + body`
into the model's own chat template as one user message (for Qwen / SmolLM2; Llama-3's own
template renders the same text as 'reference').

Choices where the reference is silent (ours, not the paper's):
  - fine-tuning prompts: the reference's `preprocess_for_rag` concatenates the unformatted
    `query_prompt` with the question ("...answer the question:\\n{question}who won...?"),
    while inference formats it. `TRAIN_QUERIES['formatted']` (default) trains on the
    inference prompt; 'reference_literal' reproduces the reference's training string.
  - the baselines' prompts (the reference ships none): no retrieval = `NO_RETRIEVAL_QUERY`
    alone; vanilla zero-shot = documents + QUERY_PROMPT (InstructRAG-FT's prompt without
    training); vanilla ICL = `VANILLA_TASK_INSTRUCTION` + N x (question, first gold answer)
    in the reference's demonstration layout + DEMO_POSTFIX + documents + QUERY_PROMPT.
  - HotpotQA (not a reference dataset) takes the 2WikiMultiHopQA postfix (multi-hop).
  - `build_contexts` with fewer than two documents does not reverse (the reference indexes
    ctxs[1] and would fail).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from jaxpapers.core import tokenizer as tok_lib

# --- src/rag.json, verbatim
USER_PREFIX = '<|start_header_id|>user<|end_header_id|>\n\n'
ASSISTANT_PREFIX = '<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n'
QUERY_PROMPT = ('Based on your knowledge and the provided information, answer the question:\n'
                '{question}')
DEMO_TASK_INSTRUCTION = (
    'Your task is to analyze the provided documents and answer the given question. Please '
    'generate a brief explanation of how the contents of these documents lead to your answer. '
    'If the provided information is not helpful to answer the question, you only need to '
    'respond based on your own knowledge, without referring to the documents.\n\nBelow are '
    'some examples of how to answer the question:\n\n')
DEMO_PREFIX = 'Read the following documents relevant to the given question: {question}\n\n'
DEMO_POSTFIX = ('###\n\nNow it is your turn to analyze the following documents and answer the '
                'given question.\n\n')
RATIONALE_INSTRUCTION = (
    "Please identify documents that are useful to answer the given question: '{question}', "
    'and explain how the contents lead to the answer: {answers}.\n\nIf none of the documents '
    'is aligned with the answer, in that case, you have to explain the answer only based on '
    'your own knowledge, without referring to the provided information.\n\n')
_COMPOSITIONAL = ('Note that the question may be compositional and require intermediate '
                  'analysis to deduce the final answer. Make sure your response is grounded '
                  'and provides clear reasoning details followed by a concise conclusion.')
RATIONALE_POSTFIX = {
    'ASQA': ('Note that the question may be ambiguous and have multiple correct answers. Make '
             'sure your response includes all correct answers and provides clear reasoning '
             'details followed by a concise conclusion.'),
    'PopQA': ('Note that the question mainly asks about the object entity that holds a certain '
              'relationship with the given subject entity. There may be multiple correct '
              'answers. Make sure your response includes all correct answers and provides '
              'clear reasoning details followed by a concise conclusion.'),
    'TriviaQA': _COMPOSITIONAL,
    'NaturalQuestions': _COMPOSITIONAL,
    '2WikiMultiHopQA': _COMPOSITIONAL,
}
# --- data_utils.format_prompt: one demonstration
DEMO_TEMPLATE = '###\n\nExample {index}\n\nQuestion: {question}\n\nAnswer: {answer}\n\n'
DOC_TEMPLATE = 'Document {index} (Title: {title}): {text}'

# --- ours (see the module docstring)
NO_RETRIEVAL_QUERY = 'Based on your knowledge, answer the question:\n{question}'
VANILLA_TASK_INSTRUCTION = (
    'Your task is to analyze the provided documents and answer the given question. Please '
    'respond with the answer only. If the provided information is not helpful to answer the '
    'question, you only need to respond based on your own knowledge, without referring to the '
    'documents.\n\nBelow are some examples of how to answer the question:\n\n')
TRAIN_QUERIES = ('formatted', 'reference_literal')
STYLES = ('chat', 'reference')


def normalize_question(question: str) -> str:
  """data_utils.normalize_question: '?' appended, leading '. ' dropped, first letter lower."""
  if not question.endswith('?'):
    question = question + '?'
  if question.startswith('.'):
    question = question.lstrip('. ')
  return question[0].lower() + question[1:]


def ordered_ctxs(ctxs: Sequence[Mapping[str, Any]], n_docs: int) -> list[Mapping[str, Any]]:
  """The first n_docs documents, reversed when the scores descend (most relevant last)."""
  if len(ctxs) > 1 and ctxs[0]['score'] > ctxs[1]['score']:
    return list(ctxs[:n_docs])[::-1]
  return list(ctxs[:n_docs])


def build_contexts(ctxs: Sequence[Mapping[str, Any]], n_docs: int) -> str:
  """data_utils.build_contexts: numbered documents, blank-line separated, then a blank line."""
  docs = '\n\n'.join(DOC_TEMPLATE.format(index=i, title=c['title'], text=c['text'])
                     for i, c in enumerate(ordered_ctxs(ctxs, n_docs), 1))
  return f'{docs}\n\n'


def demonstrations(demos: Sequence[Mapping[str, Any]], field: str) -> str:
  """N demonstrations (question + `field`: 'rationale', or 'answer' for vanilla ICL)."""
  return ''.join(DEMO_TEMPLATE.format(index=i, question=normalize_question(d['question']),
                                      answer=d[field]) for i, d in enumerate(demos, 1))


def rationale_prompt(ex: Mapping[str, Any], n_docs: int, postfix: str) -> tuple[str, str]:
  """(head, body) asking for a rationale that explains the gold answers from the documents."""
  question = normalize_question(ex['question'])
  body = (build_contexts(ex['ctxs'], n_docs) +
          RATIONALE_INSTRUCTION.format(question=question, answers=list(ex['answers'])) +
          RATIONALE_POSTFIX[postfix])
  return DEMO_PREFIX.format(question=question), body


def query_body(ex: Mapping[str, Any], n_docs: int, train_query: str = 'formatted') -> str:
  """Documents + the question prompt (InstructRAG-FT and vanilla zero-shot)."""
  question = normalize_question(ex['question'])
  if train_query == 'reference_literal':      # preprocess_for_rag's unformatted concatenation
    return build_contexts(ex['ctxs'], n_docs) + QUERY_PROMPT + question
  if train_query != 'formatted':
    raise ValueError(f'train_query {train_query!r} unknown; valid: {list(TRAIN_QUERIES)}')
  return build_contexts(ex['ctxs'], n_docs) + QUERY_PROMPT.format(question=question)


def icl_prompt(ex: Mapping[str, Any], n_docs: int, demos: Sequence[Mapping[str, Any]]
               ) -> tuple[str, str]:
  """InstructRAG-ICL: the task instruction, question + rationale demonstrations, the query."""
  head = DEMO_TASK_INSTRUCTION + demonstrations(demos, 'rationale') + DEMO_POSTFIX
  return head, query_body(ex, n_docs)


def vanilla_icl_prompt(ex: Mapping[str, Any], n_docs: int, demos: Sequence[Mapping[str, Any]]
                       ) -> tuple[str, str]:
  head = VANILLA_TASK_INSTRUCTION + demonstrations(demos, 'answer') + DEMO_POSTFIX
  return head, query_body(ex, n_docs)


def no_retrieval_prompt(ex: Mapping[str, Any]) -> tuple[str, str]:
  return '', NO_RETRIEVAL_QUERY.format(question=normalize_question(ex['question']))


def render(tok, head: str, body: str, style: str) -> str:
  """The whole prompt text: the reference's raw Llama-3 turn, or the model's chat template."""
  if style == 'reference':
    return (tok.bos_token or '') + USER_PREFIX + head + body + ASSISTANT_PREFIX
  if style == 'chat':
    return tok_lib.chat_prompt(tok, head + body)
  raise ValueError(f'prompt style {style!r} unknown; valid: {list(STYLES)}')


def encode(tok, head: str, body: str, style: str, max_tokens: int = 0) -> list[int]:
  """Token ids of the prompt; over `max_tokens`, the body is cut from the left (the part
  before the body is kept), as data_utils.format_prompt truncates."""
  text = render(tok, head, body, style)
  cut = text.rfind(body) if body else len(text)
  cut = len(text) if cut < 0 else cut
  front = tok_lib.encode(tok, text[:cut])
  rest = tok_lib.encode(tok, text[cut:])
  if max_tokens and len(front) + len(rest) > max_tokens:
    rest = rest[len(front) + len(rest) - max_tokens:]
  return front + rest
