"""Optimizers and learning-rate schedules: how gradients become updates.

    optimizers.py   SGD (momentum, Nesterov), Adam, AdamW, RMSprop, gradient clipping; OPTIMIZERS and
                    build_optimizer
    schedules.py    constant, cosine, step, exponential and plateau schedules with warmup; the
                    EarlyStopping rule
"""
