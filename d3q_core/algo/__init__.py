"""Ape-X itself, no processes and no transport: exploration, n-step returns, acting, the
Q-network, the prioritized replay memory with its sum tree and rate limiter, and the trainer
(model.py, devices.py and trainer.py are the only TensorFlow modules; only the learner role
imports them). reference.py is the whole loop in one process."""
