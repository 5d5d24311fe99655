"""colorizerutils: the library behind the colorizer notebooks and colorize.py.

`import colorizerutils as cu` gives everything, in pipeline order:
colour (LAB) -> data (images, video frames) -> models -> losses, steps and the training loop ->
full-resolution inference -> video -> metrics. It is a small package rather than one file because
it outgrew what one reader holds; each module is one section of the pipeline.
"""
import os as _os

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out

from .colour import *  # noqa: E402,F401,F403
from .data import *  # noqa: E402,F401,F403
from .models import *  # noqa: E402,F401,F403
from .training import *  # noqa: E402,F401,F403
from .distribute import *  # noqa: E402,F401,F403
from .inference import *  # noqa: E402,F401,F403
from .metrics import *  # noqa: E402,F401,F403
from .figures import *  # noqa: E402,F401,F403
from .video import *  # noqa: E402,F401,F403
from .plotting import *  # noqa: E402,F401,F403
