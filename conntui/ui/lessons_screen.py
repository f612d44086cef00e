"""The lessons screen (`L`, `conntui learn`): the chapter's points in a list, the selected one's text
beside it (below it on a narrow terminal), and "run it", which asks the dashboard to run the
lesson's experiment and shows the measured outcome when the dashboard has it.

The lessons and their wording are `conntui.lessons`; running them is the dashboard's (its runner,
its polls). This screen only draws and forwards keys.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.events import Resize
from textual.screen import Screen
from textual.widgets import Footer, Header, OptionList, Static
from textual.widgets.option_list import Option

from conntui.lessons import LESSONS, LESSONS_BY_KEY, Lesson

if TYPE_CHECKING:
    from conntui.ui.dashboard_screen import DashboardScreen

NARROW = 100  # below this width the list goes above the text


class LessonsScreen(Screen[None]):
    BINDINGS = [
        Binding("r", "run_lesson", "Run it", tooltip="Run the selected lesson's experiment on the built-in server"),
        Binding("escape,L", "back", "Dashboard", tooltip="Back to the dashboard, which shows the result"),
        Binding("pagedown", "scroll_text(1)", "Scroll down", show=False),
        Binding("pageup", "scroll_text(-1)", "Scroll up", show=False),
    ]

    def __init__(self, dashboard: DashboardScreen, selected: str = LESSONS[0].key) -> None:
        super().__init__()
        self.dashboard = dashboard
        self.selected = selected

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="lessons-body"):
            options = [Option(f"{number}. {lesson.title}", id=lesson.key) for number, lesson in enumerate(LESSONS, 1)]
            yield OptionList(*options, id="lesson-list")
            with VerticalScroll(id="lesson-text"):
                yield Static(id="lesson-body")
        yield Footer()

    def on_mount(self) -> None:
        lessons = self.query_one("#lesson-list", OptionList)
        lessons.highlighted = next(index for index, lesson in enumerate(LESSONS) if lesson.key == self.selected)
        lessons.focus()
        self.show_lesson()

    def on_resize(self, event: Resize) -> None:
        self.query_one("#lessons-body").set_class(event.size.width < NARROW, "-narrow")

    @property
    def lesson(self) -> Lesson:
        return LESSONS_BY_KEY[self.selected]

    @on(OptionList.OptionHighlighted, "#lesson-list")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id is not None:
            self.selected = self.dashboard.lesson_shown = event.option.id  # reopened on it
            self.show_lesson()

    @on(OptionList.OptionSelected, "#lesson-list")
    def _chosen(self) -> None:
        self.action_run_lesson()

    def show_lesson(self) -> None:
        """The selected lesson: its point, what "run it" runs, and its state or measured outcome."""
        lesson = self.lesson
        body = Text()
        body.append(f"{lesson.title}\n\n", "bold")
        body.append(f"{lesson.text}\n\n")
        body.append("Run it (r or enter): ", "bold")
        body.append(f"{lesson.run_it}, on the built-in test server.\n\n", "dim")
        run = self.dashboard.lesson_runs.get(lesson.key)
        if run is None:
            body.append("Not run yet.", "dim")
        elif run.outcome is None:
            state = "measuring…" if run.done_at is not None else "running…"
            body.append(f"{state}", "yellow")
        else:
            body.append("Measured: ", "bold green")
            body.append(f"{run.outcome.text}\n\n")
            body.append(
                f"Escape: the dashboard shows it (filter mine, the row selected, the {lesson.pane} pane).", "dim"
            )
        self.query_one("#lesson-body", Static).update(body)

    def lesson_changed(self, key: str) -> None:
        """The dashboard's word that a lesson's run moved on: its outcome is scrolled into view."""
        if key == self.selected:
            self.show_lesson()
            self.query_one("#lesson-text", VerticalScroll).scroll_end(animate=False)

    def action_run_lesson(self) -> None:
        self.dashboard.run_lesson(self.lesson)
        self.show_lesson()

    def action_back(self) -> None:
        self.dismiss()

    def action_scroll_text(self, direction: int) -> None:
        text = self.query_one("#lesson-text", VerticalScroll)
        text.scroll_relative(y=direction * max(1, text.size.height - 1), animate=False)
