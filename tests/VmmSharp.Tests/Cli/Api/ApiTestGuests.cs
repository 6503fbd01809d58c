using Iced.Intel;
using VmmSharp.Tests.Machine;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Tests.Cli.Api;

/// <summary>Guests for the API tests, as files (callers delete them).</summary>
internal static class ApiTestGuests
{
    /// <summary>The debug-exit status of <see cref="Keyboard"/> once it has read the Del key's scancode.</summary>
    public const int CtrlAltDelStatus = (0x21 << 1) | 1;

    /// <summary>What <see cref="Keyboard"/> prints on COM1 when it starts polling.</summary>
    public const string ReadyLine = "KBD-READY";

    /// <summary>
    /// A kernel that prints <see cref="ReadyLine"/>, then polls the i8042 (one I/O exit per poll, so it runs until told
    /// otherwise and its exit count grows while it runs) until it reads the Del key's set-1 make code 0x53, and then
    /// debug-exits with <see cref="CtrlAltDelStatus"/>.
    /// </summary>
    public static string Keyboard() => GuestImages.Write(GuestImages.BzImageRunning(a =>
    {
        Label poll = a.CreateLabel();
        a.mov(dx, 0x3f8);
        foreach (char c in ReadyLine + "\n")
        {
            a.mov(al, (byte)c);
            a.@out(dx, al);
        }
        a.Label(ref poll);
        a.@in(al, 0x64);
        a.test(al, 1);      // output buffer full
        a.jz(poll);
        a.@in(al, 0x60);
        a.cmp(al, 0x53);    // Del, make (after its 0xe0 prefix)
        a.jne(poll);
        a.mov(al, 0x21);
        a.@out(0xf4, al);
        a.hlt();
    }), "api-keyboard");
}
