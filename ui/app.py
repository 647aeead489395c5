"""The Gradio app: a question box, the answer with its [n] markers, and the cited passages."""

from __future__ import annotations

import os

from qa.settings import Settings

EXAMPLES = ["What did the 2+2 statement say about Taiwan?", "Who attended the 2+2 meeting in Tokyo?"]
CSS = """
.qa-answer { font-size: 1.1em; line-height: 1.5; }
.qa-answer.abstained { font-style: italic; }
.cite-chip { font-weight: 600; text-decoration: none; padding: 0 2px; }
.qa-source { margin: 0.8em 0; }
.qa-source .meta { color: #666; font-size: 0.9em; }
.qa-source mark { background: #fde68a; }
"""


def build(service):
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no telemetry, as with Chroma
    import gradio as gr

    from qa.errors import QAError
    from ui.render import answer_html, sources_html

    def ask(question: str, top_k: float):
        try:
            answer = service.ask(question, int(top_k))
        except QAError as exc:
            raise gr.Error(str(exc)) from exc
        return answer_html(answer), sources_html(answer)

    with gr.Blocks(title="News QA") as demo:
        gr.Markdown("# News QA\nAsk a question about the stored articles; every sentence of the answer cites its source.")
        with gr.Row():
            question = gr.Textbox(label="Question", placeholder=EXAMPLES[0], scale=5, elem_id="question")
            top_k = gr.Slider(1, 20, value=service.settings.top_k, step=1, label="Passages", scale=1)
        button = gr.Button("Ask", variant="primary", elem_id="ask")
        answer = gr.HTML(elem_id="answer")
        sources = gr.HTML(elem_id="sources")
        gr.Examples(EXAMPLES, inputs=question)
        for trigger in (button.click, question.submit):
            trigger(ask, inputs=[question, top_k], outputs=[answer, sources], api_name="ask" if trigger == button.click else False)
    return demo


def launch(settings: Settings, host: str, port: int) -> None:
    from qa.service import QAService

    service = QAService(settings)
    service.store.check()
    service.embedder.model  # load now, so the first question does not wait for it
    demo = build(service)
    demo.queue(default_concurrency_limit=2).launch(
        server_name=host, server_port=port, share=False, css=CSS, show_error=True
    )
