import ArgumentParser
import TesseraCommands

@main
extension TesseraCommand {}
