"""InstructRAG prompts pinned against the reference (weizhepei/InstructRAG src/rag.json and
src/data_utils.py), question normalisation, and document order."""
import types

import pytest

from jaxpapers.core import tokenizer as tok_lib
from jaxpapers.papers.instructrag import prompts

# src/rag.json, verbatim.
RAG_JSON = {
    "user_prefix": "<|start_header_id|>user<|end_header_id|>\n\n",
    "assistant_prefix": "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
    "query_prompt": "Based on your knowledge and the provided information, answer the question:\n{question}",
    "demo_task_instruction": "Your task is to analyze the provided documents and answer the given question. Please generate a brief explanation of how the contents of these documents lead to your answer. If the provided information is not helpful to answer the question, you only need to respond based on your own knowledge, without referring to the documents.\n\nBelow are some examples of how to answer the question:\n\n",
    "demo_prefix": "Read the following documents relevant to the given question: {question}\n\n",
    "demo_postfix": "###\n\nNow it is your turn to analyze the following documents and answer the given question.\n\n",
    "rationale_generation_instruction": "Please identify documents that are useful to answer the given question: '{question}', and explain how the contents lead to the answer: {answers}.\n\nIf none of the documents is aligned with the answer, in that case, you have to explain the answer only based on your own knowledge, without referring to the provided information.\n\n",
    "rationale_generation_postfix_ASQA": "Note that the question may be ambiguous and have multiple correct answers. Make sure your response includes all correct answers and provides clear reasoning details followed by a concise conclusion.",
    "rationale_generation_postfix_PopQA": "Note that the question mainly asks about the object entity that holds a certain relationship with the given subject entity. There may be multiple correct answers. Make sure your response includes all correct answers and provides clear reasoning details followed by a concise conclusion.",
    "rationale_generation_postfix_TriviaQA": "Note that the question may be compositional and require intermediate analysis to deduce the final answer. Make sure your response is grounded and provides clear reasoning details followed by a concise conclusion.",
    "rationale_generation_postfix_NaturalQuestions": "Note that the question may be compositional and require intermediate analysis to deduce the final answer. Make sure your response is grounded and provides clear reasoning details followed by a concise conclusion.",
    "rationale_generation_postfix_2WikiMultiHopQA": "Note that the question may be compositional and require intermediate analysis to deduce the final answer. Make sure your response is grounded and provides clear reasoning details followed by a concise conclusion."
}

LLAMA3 = types.SimpleNamespace(bos_token='<|begin_of_text|>')   # what 'reference' style reads
EX = {'question': 'Who wrote Hamlet', 'answers': ['William Shakespeare', 'Shakespeare'],
      'ctxs': [{'title': 'Hamlet', 'text': 'A play by Shakespeare.', 'score': 2.0},
               {'title': 'Macbeth', 'text': 'Another play.', 'score': 1.0}]}
DEMOS = [{'question': 'Capital of France', 'rationale': 'Document 1 says Paris.'},
         {'question': 'Who painted the Mona Lisa?', 'rationale': 'Leonardo da Vinci.'}]

# data_utils.format_prompt(do_rationale_generation=True) for EX, decoded (BOS included).
RATIONALE_PROMPT = (
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nRead the following documents "
    "relevant to the given question: who wrote Hamlet?\n\nDocument 1 (Title: Macbeth): Another "
    "play.\n\nDocument 2 (Title: Hamlet): A play by Shakespeare.\n\nPlease identify documents "
    "that are useful to answer the given question: 'who wrote Hamlet?', and explain how the "
    "contents lead to the answer: ['William Shakespeare', 'Shakespeare'].\n\nIf none of the "
    "documents is aligned with the answer, in that case, you have to explain the answer only "
    "based on your own knowledge, without referring to the provided information.\n\nNote that "
    "the question may be compositional and require intermediate analysis to deduce the final "
    "answer. Make sure your response is grounded and provides clear reasoning details followed "
    "by a concise conclusion.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
# data_utils.format_prompt(demos=DEMOS) (InstructRAG-ICL) for EX.
ICL_PROMPT = (
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nYour task is to analyze the "
    "provided documents and answer the given question. Please generate a brief explanation of "
    "how the contents of these documents lead to your answer. If the provided information is "
    "not helpful to answer the question, you only need to respond based on your own knowledge, "
    "without referring to the documents.\n\nBelow are some examples of how to answer the "
    "question:\n\n###\n\nExample 1\n\nQuestion: capital of France?\n\nAnswer: Document 1 says "
    "Paris.\n\n###\n\nExample 2\n\nQuestion: who painted the Mona Lisa?\n\nAnswer: Leonardo da "
    "Vinci.\n\n###\n\nNow it is your turn to analyze the following documents and answer the "
    "given question.\n\nDocument 1 (Title: Macbeth): Another play.\n\nDocument 2 (Title: "
    "Hamlet): A play by Shakespeare.\n\nBased on your knowledge and the provided information, "
    "answer the question:\nwho wrote Hamlet?<|eot_id|><|start_header_id|>assistant"
    "<|end_header_id|>\n\n")
# data_utils.format_prompt(demos=[]) (InstructRAG-FT at inference) for EX.
FT_PROMPT = (
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nDocument 1 (Title: Macbeth): "
    "Another play.\n\nDocument 2 (Title: Hamlet): A play by Shakespeare.\n\nBased on your "
    "knowledge and the provided information, answer the question:\nwho wrote Hamlet?<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n")
# data_utils.preprocess_for_rag's source (query_prompt concatenated unformatted).
FT_TRAIN_SOURCE_LITERAL = (
    "Document 1 (Title: Macbeth): Another play.\n\nDocument 2 (Title: Hamlet): A play by "
    "Shakespeare.\n\nBased on your knowledge and the provided information, answer the "
    "question:\n{question}who wrote Hamlet?")


def test_strings_equal_rag_json():
  assert prompts.USER_PREFIX == RAG_JSON['user_prefix']
  assert prompts.ASSISTANT_PREFIX == RAG_JSON['assistant_prefix']
  assert prompts.QUERY_PROMPT == RAG_JSON['query_prompt']
  assert prompts.DEMO_TASK_INSTRUCTION == RAG_JSON['demo_task_instruction']
  assert prompts.DEMO_PREFIX == RAG_JSON['demo_prefix']
  assert prompts.DEMO_POSTFIX == RAG_JSON['demo_postfix']
  assert prompts.RATIONALE_INSTRUCTION == RAG_JSON['rationale_generation_instruction']
  assert prompts.RATIONALE_POSTFIX == {
      k[len('rationale_generation_postfix_'):]: v for k, v in RAG_JSON.items()
      if k.startswith('rationale_generation_postfix_')}


def test_rationale_prompt_is_the_reference_string():
  head, body = prompts.rationale_prompt(EX, 5, 'NaturalQuestions')
  assert prompts.render(LLAMA3, head, body, 'reference') == RATIONALE_PROMPT


def test_icl_and_ft_prompts_are_the_reference_strings():
  assert prompts.render(LLAMA3, *prompts.icl_prompt(EX, 5, DEMOS), 'reference') == ICL_PROMPT
  assert prompts.render(LLAMA3, '', prompts.query_body(EX, 5), 'reference') == FT_PROMPT
  assert prompts.query_body(EX, 5, 'reference_literal') == FT_TRAIN_SOURCE_LITERAL
  with pytest.raises(ValueError, match="train_query 'x' unknown"):
    prompts.query_body(EX, 5, 'x')


def test_baseline_prompts():
  assert prompts.no_retrieval_prompt(EX) == (
      '', 'Based on your knowledge, answer the question:\nwho wrote Hamlet?')
  head, body = prompts.vanilla_icl_prompt(EX, 5, [{'question': 'Capital of France',
                                                   'answer': 'Paris'}])
  assert head.endswith('###\n\nExample 1\n\nQuestion: capital of France?\n\nAnswer: Paris\n\n'
                       + RAG_JSON['demo_postfix'])
  assert 'Please respond with the answer only.' in head
  assert body == prompts.query_body(EX, 5)


@pytest.mark.parametrize('raw, expected', [
    ('Who wrote Hamlet', 'who wrote Hamlet?'),
    ('Who wrote Hamlet?', 'who wrote Hamlet?'),
    ('when was the last time anyone was on the moon', 'when was the last time anyone was on '
     'the moon?'),
    ('. Which city?', 'which city?'),
    ('NASA launched what', 'nASA launched what?'),      # only the first letter is lowered
    ('Éire is where', 'éire is where?'),
])
def test_normalize_question(raw, expected):
  assert prompts.normalize_question(raw) == expected


def _ctxs(*scores):
  return [{'title': f't{i}', 'text': f'x{i}', 'score': s} for i, s in enumerate(scores)]


@pytest.mark.parametrize('scores, n, order', [
    ((3.0, 2.0, 1.0), 5, ['t2', 't1', 't0']),        # descending: reversed, best last
    ((1.0, 2.0, 3.0), 5, ['t0', 't1', 't2']),        # ascending: kept
    ((2.0, 2.0, 1.0), 5, ['t0', 't1', 't2']),        # tie at the top: kept (strict >)
    ((3.0, 2.0, 1.0, 0.5), 2, ['t1', 't0']),         # cut to n_docs, then reversed
    ((3.0, 1.0, 2.0), 3, ['t2', 't1', 't0']),        # only ctxs[0] vs ctxs[1] decides
    ((3.0,), 5, ['t0']),                             # one document: nothing to compare
])
def test_document_order_reverses_when_scores_descend(scores, n, order):
  assert [c['title'] for c in prompts.ordered_ctxs(_ctxs(*scores), n)] == order
  text = prompts.build_contexts(_ctxs(*scores), n)
  assert text.startswith(f'Document 1 (Title: {order[0]}): x{order[0][1:]}\n\n')
  assert text.endswith(f'Document {len(order)} (Title: {order[-1]}): x{order[-1][1:]}\n\n')


@pytest.fixture(scope='module')
def qwen_tok():
  return tok_lib.load('qwen')


def test_chat_style_puts_head_and_body_in_one_user_turn(qwen_tok):
  head, body = prompts.icl_prompt(EX, 5, DEMOS)
  text = prompts.render(qwen_tok, head, body, 'chat')
  assert f'<|im_start|>user\n{head}{body}<|im_end|>\n<|im_start|>assistant\n' in text
  with pytest.raises(ValueError, match="prompt style 'raw' unknown"):
    prompts.render(qwen_tok, head, body, 'raw')


def test_encode_cuts_the_documents_from_the_left_and_keeps_the_head(qwen_tok):
  long = {**EX, 'ctxs': [{'title': 'T', 'text': 'word ' * 400, 'score': 1.0}]}
  head, body = prompts.icl_prompt(long, 5, DEMOS)
  full = prompts.encode(qwen_tok, head, body, 'chat')
  cut = prompts.encode(qwen_tok, head, body, 'chat', max_tokens=len(full) - 100)
  assert len(cut) == len(full) - 100
  n_head = len(tok_lib.encode(qwen_tok, prompts.render(qwen_tok, head, body, 'chat').split(
      'Document 1')[0]))
  assert cut[:n_head] == full[:n_head] and cut[-200:] == full[-200:]
  assert prompts.encode(qwen_tok, head, body, 'chat', max_tokens=10**6) == full
