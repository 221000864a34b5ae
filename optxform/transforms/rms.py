"""Second-moment scalings without a first moment: RMSprop, Adagrad, Adadelta."""

__all__: list[str] = []
