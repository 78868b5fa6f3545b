"""Logger shared by the provider modules, so their lines can be filtered as one source."""

from __future__ import annotations

import logging

logger = logging.getLogger("interview.providers")
