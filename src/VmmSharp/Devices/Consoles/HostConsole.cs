namespace VmmSharp.Devices.Consoles;

/// <summary>
/// The host side of a guest console: where the guest's output goes and, optionally, where its input comes from.
/// A machine gives both to one console device (COM1 on the PC); the caller owns them and may reuse them for the next
/// machine, so that a rebooting guest keeps one terminal.
/// </summary>
/// <param name="Output">The guest's output: a bounded buffer drained into a sink off the vCPU threads.</param>
/// <param name="Input">The guest's input; null for none.</param>
public sealed record HostConsole(ConsoleOutput Output, IConsoleInput? Input = null);
