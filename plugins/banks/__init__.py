"""Bank adapters (银行适配器): one package per bank, registered with ``yinyi_register_bank_adapters``.

``refbank`` is the reference operating bank for e-CNY acquiring, with a simulator;
copy its layout when adding a real bank.
"""
