"""eval/choice.py with the real embedding model, on passages written here."""

from eval.choice import ChoicePicker
from qa.citations import Passage


def passages(*texts):
    return [Passage(f"c{i}", f"d{i}", "t", "", "", "", text, 0, len(text), 0.5) for i, text in enumerate(texts)]


def test_the_choice_the_passages_support_wins(embedder):
    found = passages(
        "Lawmakers met on Tuesday. The European Union will require a common USB-C charger for phones sold in Europe.",
        "Apple said it would comply.",
    )
    question = "Which continent will require smartphone makers to support a single common charger?"
    assert ChoicePicker(embedder).pick(question, ["North America", "Europe", "Asia", "Africa"], found) == 1


def test_a_one_digit_choice_is_matched_by_its_number(embedder):
    found = passages("A Russian court extended the detention of the basketball star by 6 months on Friday.")
    question = "For how many more months will the basketball star be detained?"
    assert ChoicePicker(embedder).pick(question, ["3", "4", "5", "6"], found) == 3


def test_no_passages_no_pick(embedder):
    assert ChoicePicker(embedder).pick("Which one?", ["a", "b"], []) is None
