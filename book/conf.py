"""Sphinx configuration of the book (`make book`, tools/build_book.py).

The book is the committed, executed notebooks rendered as they are: MyST-NB reads their stored outputs and
nothing is executed. tools/build_book.py stages this folder, the notebooks and the figures into
build/book/src and runs Sphinx there; the chapters' toctree comes from _toc.yml.
"""

project = "genrelib"
author = "the genrelib authors"
copyright = "the genrelib authors, MIT licence"
language = "en"

extensions = ["myst_nb"]
root_doc = "index"
exclude_patterns = []

# Never run a notebook: the book shows what `make demo` produced and committed.
nb_execution_mode = "off"
nb_output_stderr = "show"
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

html_theme = "sphinx_book_theme"
html_title = "genrelib"
html_copy_source = False
html_show_sourcelink = False
html_last_updated_fmt = None
html_theme_options = {
    "home_page_in_toc": True,
    "show_toc_level": 2,
    "use_download_button": False,
    "use_fullscreen_button": False,
    "navigation_with_keys": False,
    # The sidebar has the search field; without this the theme adds a second one in a header bar.
    "navbar_persistent": [],
}
# The theme's light/dark switch starts from this mode (unset, its script logs an error in every page).
html_context = {"default_mode": "light"}
