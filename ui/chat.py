"""The Ask tab: a conversation whose answers stream in, the sources panel, and the filters."""

from __future__ import annotations

import datetime as dt

import gradio as gr

from qa.citations import Answer
from qa.conversation import Turn
from qa.errors import QAError
from qa.retrieve import Filters
from qa.service import BACKENDS
from ui.render import Exchange, answer_html, conversation_html, sources_html, sources_panel_html

EXAMPLES = [
    "What did the 2+2 statement say about Taiwan?",
    "Who attended the 2+2 meeting in Tokyo?",
    "What did Austin say about China?",
]


def parse_date(value: str | None, label: str) -> dt.date | None:
    if not value or not str(value).strip():
        return None
    try:
        return dt.date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise gr.Error(f"{label}: {value!r} is not a date; use YYYY-MM-DD") from None


def source_choices(service) -> list[str]:
    return sorted({r["source"] for r in service.documents() if r.get("source")})


def ask_tab(service) -> gr.Dropdown:
    """Builds the tab inside the current Blocks; returns the source filter, refreshed by the caller."""
    exchanges = gr.State([])  # list[Exchange]: the conversation of this browser tab
    with gr.Row():
        with gr.Column(scale=3):
            chat = gr.HTML(conversation_html([]), elem_id="chat")
            with gr.Row():
                question = gr.Textbox(show_label=False, placeholder=EXAMPLES[0], scale=5, elem_id="question", autofocus=True)
                ask = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="ask")
            gr.Examples(EXAMPLES, inputs=question, label="Examples")
            new = gr.Button("New conversation", size="sm", elem_id="new-chat")
        with gr.Column(scale=2):
            sources = gr.HTML(sources_panel_html([]), elem_id="sources", autoscroll=False)
    with gr.Accordion("Filters", open=False, elem_id="filters"):
        with gr.Row():
            since = gr.DateTime(label="Published from", include_time=False, type="string", elem_id="since")
            until = gr.DateTime(label="Published until", include_time=False, type="string", elem_id="until")
            as_of = gr.DateTime(label="Asked as of (default: today)", include_time=False, type="string", elem_id="as-of")
        with gr.Row():
            outlets = gr.Dropdown([], multiselect=True, label="Sources (all when empty)", elem_id="source-filter")
            top_k = gr.Slider(1, 20, value=service.settings.top_k, step=1, label="Passages (top-k)", elem_id="top-k")
            backend = gr.Dropdown(list(BACKENDS), value=service.settings.llm, label="Answer backend", elem_id="backend")

    def respond(text, conversation, top_k, since, until, outlets, backend, as_of):
        filters = Filters(parse_date(since, "Published from"), parse_date(until, "Published until"), tuple(outlets or ()))
        asked_as_of = parse_date(as_of, "Asked as of")
        # The rewriter needs what each earlier turn searched for, not only what was typed.
        history = [Turn(e.answer.standalone_question or e.question, e.answer.answer) for e in conversation]
        yield conversation_html(conversation, (text, "")), gr.skip(), conversation, ""
        partial = ""
        try:
            for item in service.with_llm(backend).ask_stream(text, int(top_k), asked_as_of, history, filters=filters):
                if isinstance(item, Answer):
                    day = (asked_as_of or dt.date.today()).isoformat()
                    conversation = [*conversation, Exchange(text.strip(), item, day)]
                    yield conversation_html(conversation), sources_panel_html(conversation), conversation, gr.skip()
                else:
                    partial += item
                    yield conversation_html(conversation, (text, partial)), gr.skip(), conversation, gr.skip()
        except QAError as exc:
            yield conversation_html(conversation), gr.skip(), conversation, text  # the question back, to fix it
            raise gr.Error(str(exc)) from exc

    inputs = [question, exchanges, top_k, since, until, outlets, backend, as_of]
    outputs = [chat, sources, exchanges, question]
    ask.click(respond, inputs, outputs, api_name="chat")
    question.submit(respond, inputs, outputs, api_name=False)
    new.click(lambda: (conversation_html([]), sources_panel_html([]), []), None, [chat, sources, exchanges], api_name=False)

    def ask_once(question: str, top_k: float) -> tuple[str, str]:
        """One question, no conversation: the answer's HTML and its sources' HTML."""
        try:
            answer = service.ask(question, int(top_k))
        except QAError as exc:
            raise gr.Error(str(exc)) from exc
        return answer_html(answer), sources_html(answer)

    gr.api(ask_once, api_name="ask")
    return outlets
