"""The zoo: any model by name, swept (``driver``), with throughput (``throughput``)
and published accuracy (``reference``); rendered by ``common.render.zoo``."""
