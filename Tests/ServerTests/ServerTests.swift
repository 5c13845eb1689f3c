import Testing
@testable import Server
import TesseraCore

@Test func placeholderUntilSuite() { #expect(Bool(true)) }
