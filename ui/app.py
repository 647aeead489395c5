"""The Gradio app: Ask (a cited, streamed chat), Library, Evaluation and Status tabs.

`build(service)` makes the Blocks; ui/server.py serves it beside the JSON API.
"""

from __future__ import annotations

import os

from qa.settings import Settings

CSS = """
.qa-chat { display: flex; flex-direction: column; gap: 1em; min-height: 12em; }
.qa-chat.empty { color: #777; }
.turn { border-bottom: 1px solid #e5e7eb; padding-bottom: .8em; }
.qa-question { font-weight: 600; margin-bottom: .4em; }
.qa-question::before { content: "Q: "; color: #888; }
.qa-answer { font-size: 1.08em; line-height: 1.55; }
.qa-answer.abstained { font-style: italic; color: #555; }
.thinking { color: #888; font-style: italic; }
.meta { color: #666; font-size: .88em; }
.cite-chip { display: inline-block; font-weight: 600; font-size: .85em; text-decoration: none; padding: 0 .35em;
             margin: 0 .1em; border-radius: .6em; background: #dbeafe; color: #1e40af; cursor: pointer; }
.unsupported { text-decoration: underline wavy #dc2626; }
.flag { color: #dc2626; }
.qa-warning { color: #92400e; background: #fef3c7; padding: .2em .5em; border-radius: .3em; margin-top: .3em; }
.qa-flagged { color: #991b1b; font-size: .9em; margin-top: .2em; }
.qa-source { margin: .6em 0; padding: .4em .6em; border-radius: .4em; transition: background 1s; }
.qa-source.flash { background: #fef9c3; }
.qa-source mark { background: #fde68a; padding: 0 .1em; }
.qa-source blockquote { margin: .3em 0 0 0; padding-left: .7em; border-left: 3px solid #d1d5db; }
.badge { font-size: .75em; padding: .05em .45em; border-radius: .6em; vertical-align: middle; }
.badge.ok { background: #dcfce7; color: #166534; }
.badge.bad { background: #fee2e2; color: #991b1b; }
.qa-article p { margin: .5em 0; }
"""

# A chip opens its source card (folded for earlier questions), scrolls to it and flashes it.
HEAD = """<script>
document.addEventListener("click", (event) => {
  const chip = event.target.closest("a.cite-chip");
  if (!chip) return;
  const card = document.getElementById(chip.getAttribute("href").slice(1));
  if (!card) return;
  event.preventDefault();
  const folded = card.closest("details");
  if (folded) folded.open = true;
  card.scrollIntoView({behavior: "smooth", block: "center"});
  card.classList.remove("flash"); void card.offsetWidth; card.classList.add("flash");
  setTimeout(() => card.classList.remove("flash"), 2500);
});
</script>"""


def status_markdown(service) -> str:
    s = service.status()
    rows = [
        ("articles", s["articles"]), ("chunks", s["chunks"]), ("embedding model", f"`{s['embed_model']}` (`{s['embed_backend']}`)"),
        ("answer backend", f"`{s['backend']}`" + (f" (`{s['llm_model']}`)" if s["llm_model"] else "")),
        ("data dir", f"`{s['data_dir']}`"), ("vector store", f"`{s['store']}`"),
    ]
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    return f"| | |\n|---|---|\n{table}\n\nThe JSON API is described at [/api/docs](/api/docs)."


def build(service):
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no telemetry, as with Chroma
    import gradio as gr

    from ui.chat import ask_tab, source_choices
    from ui.evaluation import evaluation_tab, set_choices
    from ui.library import library_tab, library_view

    with gr.Blocks(title="News QA") as demo:
        gr.Markdown("# News QA\nAnswers from the stored news articles; every sentence cites the passage it came from.")
        with gr.Tabs():
            with gr.Tab("Ask", id="ask-tab") as ask:
                outlets = ask_tab(service)
            with gr.Tab("Library", id="library-tab") as library:
                search, library_outputs = library_tab(service)
            with gr.Tab("Evaluation", id="eval-tab") as evaluation:
                sets = evaluation_tab(service)
            with gr.Tab("Status", id="status-tab") as status_tab:
                status = gr.Markdown(elem_id="status")
                refresh = gr.Button("Refresh", size="sm", elem_id="status-refresh")

        # Each tab reads the corpus afresh when opened: the other tabs (or the CLI) may have changed it.
        def outlet_update():
            return gr.update(choices=source_choices(service))

        ask.select(outlet_update, None, outlets, api_name=False)
        library.select(lambda s: library_view(service, s), search, library_outputs, api_name=False)
        evaluation.select(lambda: set_choices(service), None, sets, api_name=False)
        for event in (status_tab.select, refresh.click):
            event(lambda: status_markdown(service), None, status, api_name=False)
        # The library fills when its tab opens, not with every page (library.select above).
        demo.load(lambda: (outlet_update(), set_choices(service), status_markdown(service)), None, [outlets, sets, status], api_name=False)
    return demo


def launch(settings: Settings, host: str, port: int) -> None:
    from ui.server import serve

    serve(settings, host, port)
