"""Board registry: the explicit list of board files shipped with insitu (grep a board's name here)."""

from __future__ import annotations

from functools import cache

from insitu.boards.board import Board, constraints, parse_board_file
from insitu.errors import ConfigError

BOARD_FILES = ("ulx3s.toml", "orangecrab.toml", "icebreaker.toml", "arty_a7.toml", "pynq_z2.toml",
               "zcu102.toml", "coaxlink_octo.toml", "alveo_u250.toml")

__all__ = ["Board", "all_boards", "get_board", "constraints", "parse_board_file"]


@cache
def all_boards() -> dict[str, Board]:
    from insitu.boards.board import load_builtin

    return load_builtin(BOARD_FILES)


def get_board(name: str) -> Board:
    boards = all_boards()
    if name not in boards:
        raise ConfigError(f"unknown board {name!r}", f"known boards: {', '.join(sorted(boards))}")
    return boards[name]
