"""Learning to optimize: a Gymnasium environment over optlab's problems, PPO training of a
coordinate-wise policy (Stable-Baselines3), and its evaluation against tuned baselines.

Li & Malik, "Learning to Optimize" (2016): optimisation as a sequential decision problem;
Andrychowicz et al. (2016): one network shared by every coordinate. The trained network is
plain torch (:mod:`optlab.optim.learned`); this package needs the ``rl`` extra
(``gymnasium``, ``stable-baselines3``) to train it, not to run it.

Modules: :mod:`~optlab.rl.instances` (families, train / held-out instances),
:mod:`~optlab.rl.env` (the environment), :mod:`~optlab.rl.policy` (the SB3 adapter),
:mod:`~optlab.rl.training` (PPO), :mod:`~optlab.rl.evaluation` (held-out comparisons and
the bench report).
"""

from __future__ import annotations
