using Iced.Intel;

namespace VmmSharp.Emulation;

/// <summary>
/// SSE and AVX moves between a vector register and memory that KVM's emulator cannot run, such as a <c>movq</c> or a
/// VEX <c>vmovdqu</c> to an MMIO address: the memory side goes through the fallback's page walk to RAM or to the MMIO
/// bus (in 8-byte accesses), the register side through KVM_GET_XSAVE/KVM_SET_XSAVE (XMM and the upper YMM halves). Aligned forms raise #GP(0) on a misaligned operand; legacy loads keep bits above 127, VEX
/// loads zero them, scalar loads zero the rest of the XMM register.
/// </summary>
internal static class VectorMoves
{
    private const int XmmOffset = 160;

    /// <summary>Whether <paramref name="instruction"/> is one of the moves handled: register ↔ memory, XMM or YMM, no EVEX.</summary>
    public static bool IsVectorMove(in Instruction instruction)
    {
        if (instruction.Encoding is not (EncodingKind.Legacy or EncodingKind.VEX) || instruction.OpCount != 2)
        {
            return false;
        }
        bool loads = instruction.Op1Kind == OpKind.Memory && instruction.Op0Kind == OpKind.Register;
        bool stores = instruction.Op0Kind == OpKind.Memory && instruction.Op1Kind == OpKind.Register;
        if (!loads && !stores)
        {
            return false;
        }
        Register reg = loads ? instruction.Op0Register : instruction.Op1Register;
        if (!reg.IsXMM() && !reg.IsYMM())
        {
            return false;
        }
        return instruction.Mnemonic is Mnemonic.Movdqa or Mnemonic.Movdqu or Mnemonic.Movaps or Mnemonic.Movups or Mnemonic.Movapd
            or Mnemonic.Movupd or Mnemonic.Movntdq or Mnemonic.Movntps or Mnemonic.Movntpd or Mnemonic.Movntdqa or Mnemonic.Lddqu
            or Mnemonic.Movq or Mnemonic.Movd or Mnemonic.Movss or Mnemonic.Movsd
            or Mnemonic.Vmovdqa or Mnemonic.Vmovdqu or Mnemonic.Vmovaps or Mnemonic.Vmovups or Mnemonic.Vmovapd or Mnemonic.Vmovupd
            or Mnemonic.Vmovntdq or Mnemonic.Vmovntps or Mnemonic.Vmovntpd or Mnemonic.Vmovntdqa or Mnemonic.Vlddqu
            or Mnemonic.Vmovq or Mnemonic.Vmovd;
    }

    public static void Execute(EmulationContext context, in Instruction instruction)
    {
        bool vex = instruction.Encoding == EncodingKind.VEX;
        if (!context.CheckSse(vex))
        {
            return;
        }
        bool load = instruction.Op1Kind == OpKind.Memory;
        Register reg = load ? instruction.Op0Register : instruction.Op1Register;
        int size = instruction.MemorySize.GetSize();
        if (size is not (4 or 8 or 16 or 32) || !context.TryLinearAddress(instruction, size, out ulong linear))
        {
            if (size is not (4 or 8 or 16 or 32))
            {
                context.Raise(EmulationContext.UD);
            }
            return;
        }
        if (Aligned(instruction.Mnemonic) && (linear & (ulong)(size - 1)) != 0)
        {
            context.Raise(EmulationContext.GP, 0);
            return;
        }
        int index = reg.IsYMM() ? reg - Register.YMM0 : reg - Register.XMM0;
        Span<byte> data = stackalloc byte[32];
        data = data[..size];
        if (load)
        {
            if (!context.TryRead(linear, data, context.DataAccess(write: false)))
            {
                return;
            }
            Load(context, vex, index, data);
        }
        else
        {
            Store(context, index, data);
            if (!context.TryWrite(linear, data, context.DataAccess(write: true)))
            {
                return;
            }
        }
        context.Advance(instruction);
    }

    private static bool Aligned(Mnemonic m) => m is Mnemonic.Movdqa or Mnemonic.Movaps or Mnemonic.Movapd or Mnemonic.Movntdq
        or Mnemonic.Movntps or Mnemonic.Movntpd or Mnemonic.Movntdqa or Mnemonic.Vmovdqa or Mnemonic.Vmovaps or Mnemonic.Vmovapd
        or Mnemonic.Vmovntdq or Mnemonic.Vmovntps or Mnemonic.Vmovntpd or Mnemonic.Vmovntdqa;

    private static void Load(EmulationContext context, bool vex, int index, ReadOnlySpan<byte> data)
    {
        Span<byte> state = context.Xsave();
        Span<byte> xmm = state.Slice(XmmOffset + (index * 16), 16), upper = default;
        if (vex && XsaveLayout.Known(2))
        {
            upper = state.Slice(XsaveLayout.StandardOffset(2) + (index * 16), 16);
            state[XsaveLayout.Header] |= 4; // the AVX state is now in use
        }
        state[XsaveLayout.Header] |= 2; // KVM_SET_XSAVE loads the XMM registers only with the SSE bit set
        context.XsaveChanged();
        if (data.Length < 16)
        {
            xmm.Clear();
        }
        data[..Math.Min(16, data.Length)].CopyTo(xmm);
        if (!upper.IsEmpty)
        {
            upper.Clear();
            if (data.Length == 32)
            {
                data[16..].CopyTo(upper);
            }
        }
    }

    private static void Store(EmulationContext context, int index, Span<byte> data)
    {
        Span<byte> state = context.Xsave();
        state.Slice(XmmOffset + (index * 16), Math.Min(16, data.Length)).CopyTo(data);
        if (data.Length == 32 && XsaveLayout.Known(2))
        {
            state.Slice(XsaveLayout.StandardOffset(2) + (index * 16), 16).CopyTo(data[16..]);
        }
    }
}
