import CommandLineSupport

/// Every line `orchestrate` prints for people on standard output goes through `printText`, which
/// writes out the control characters of whatever it quotes from outside (a record's failure, an
/// engine's message): nothing it prints can act on the terminal. This takes the place of Swift's
/// `print` for text in this module, so that no command can forget it; `WatchPrinter` alone sends
/// its own escape sequence (clear the screen) with `Swift.print`.
func print(_ text: String) {
    printText(text)
}
