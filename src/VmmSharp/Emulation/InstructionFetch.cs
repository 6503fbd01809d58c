namespace VmmSharp.Emulation;

/// <summary>
/// The failed instruction's bytes: from the exit where KVM supplies them (KVM_CAP_EXIT_ON_EMULATION_FAILURE), else read
/// from guest memory at CS:RIP through the fallback's own page walk, as an instruction fetch at the current privilege.
/// </summary>
internal static class InstructionFetch
{
    public const int MaxLength = 15;

    /// <summary>
    /// Fills <paramref name="buffer"/> (15 bytes) and returns how many bytes are there; 0 if the first byte cannot be
    /// fetched, in which case the #PF the fetch raises has been injected.
    /// </summary>
    public static int Fetch(EmulationContext context, ReadOnlySpan<byte> fromExit, Span<byte> buffer)
    {
        if (!fromExit.IsEmpty)
        {
            int n = Math.Min(fromExit.Length, MaxLength);
            fromExit[..n].CopyTo(buffer);
            return n;
        }
        ulong rip = context.State.Rip;
        ulong linear = context.Bitness == 64 ? rip : (context.State.Cs.Base + rip) & 0xffff_ffff;
        AccessKind fetch = AccessKind.Fetch | (context.Cpl == 3 ? AccessKind.User : 0);
        // The instruction may end before a second, unmapped page: fetch that page only if the first one runs out.
        int first = (int)Math.Min(MaxLength, 0x1000 - (linear & 0xfff));
        if (!context.TryRead(linear, buffer[..first], fetch))
        {
            return 0;
        }
        if (first == MaxLength)
        {
            return first;
        }
        ulong next = context.Bitness == 64 ? linear + (ulong)first : (linear + (ulong)first) & 0xffff_ffff;
        if (!PageWalker.Translate(context.Space, context.Paging, next, fetch, out _, out _))
        {
            return first; // decoding shows whether the instruction needs the rest
        }
        return context.TryRead(next, buffer[first..MaxLength], fetch) ? MaxLength : first;
    }
}
