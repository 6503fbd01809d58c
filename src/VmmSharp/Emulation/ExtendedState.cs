using System.Buffers.Binary;
using Iced.Intel;

namespace VmmSharp.Emulation;

/// <summary>
/// The <c>xsave</c>/<c>xrstor</c> family on the vCPU's XSAVE state (KVM_GET_XSAVE/KVM_SET_XSAVE, fetched only for
/// these): the components that XCR0 and EDX:EAX select, in the standard layout (<c>xsave</c>, <c>xsaveopt</c>,
/// <c>xrstor</c>) or the compacted one (<c>xsavec</c>, <c>xsaves</c>, <c>xrstor</c> of a compacted area, <c>xrstors</c>).
/// #UD without CR4.OSXSAVE, #NM with CR0.TS, #GP(0) for an area not 64-byte aligned, a header the hardware rejects, reserved
/// MXCSR bits, or <c>xsaves</c>/<c>xrstors</c> above CPL0. Memory faults come before any state changes.
/// </summary>
/// <remarks>
/// Supervisor components (IA32_XSS) are not modelled: KVM offers none here, so <c>xsaves</c>/<c>xrstors</c> act on the
/// user components XCR0 enables. The 32-bit forms store FIP/FDP in their 64-bit layout, without FCS/FDS.
/// </remarks>
internal static class ExtendedState
{
    private const ulong Compacted = 1UL << 63;

    public static void Execute(EmulationContext context, in Instruction instruction, uint mxcsrMask)
    {
        Mnemonic m = instruction.Mnemonic;
        bool supervisor = m is Mnemonic.Xsaves or Mnemonic.Xsaves64 or Mnemonic.Xrstors or Mnemonic.Xrstors64;
        bool restore = m is Mnemonic.Xrstor or Mnemonic.Xrstor64 or Mnemonic.Xrstors or Mnemonic.Xrstors64;
        if (!context.OsXsave)
        {
            context.Raise(EmulationContext.UD);
            return;
        }
        if ((context.Cr0 & 8) != 0)
        {
            context.Raise(EmulationContext.NM);
            return;
        }
        if (supervisor && context.Cpl != 0)
        {
            context.Raise(EmulationContext.GP, 0);
            return;
        }
        if (!context.TryLinearAddress(instruction, XsaveLayout.HeaderEnd, out ulong area))
        {
            return;
        }
        if ((area & 63) != 0)
        {
            context.Raise(EmulationContext.GP, 0);
            return;
        }
        ulong xcr0 = context.Xcr0();
        ulong rfbm = xcr0 & ((context.State.Rdx << 32) | (uint)context.State.Rax);
        bool done = restore
            ? Restore(context, area, xcr0, rfbm, supervisor, mxcsrMask)
            : Save(context, area, rfbm, compacted: m is Mnemonic.Xsavec or Mnemonic.Xsavec64 or Mnemonic.Xsaves or Mnemonic.Xsaves64);
        if (done)
        {
            context.Advance(instruction);
        }
    }

    private static bool Save(EmulationContext context, ulong area, ulong rfbm, bool compacted)
    {
        AccessKind write = context.DataAccess(write: true);
        if (!context.TryProbe(area, XsaveLayout.AreaSize(rfbm, compacted), write))
        {
            return false;
        }
        Span<byte> state = context.Xsave();
        // x87 and SSE are always live in KVM's legacy region; a component reported in use may be in its initial state.
        ulong inUse = (BinaryPrimitives.ReadUInt64LittleEndian(state[XsaveLayout.Header..]) | 3) & rfbm;
        int xmmBytes = context.Bitness == 64 ? 256 : 128;
        bool saveX87 = ((compacted ? inUse : rfbm) & 1) != 0;
        bool saveSse = ((compacted ? inUse : rfbm) & 2) != 0;
        if (saveX87 && (!context.TryWrite(area, state[..24], write) || !context.TryWrite(area + 32, state[32..160], write)))
        {
            return false;
        }
        if ((rfbm & 6) != 0 && !context.TryWrite(area + 24, state[24..32], write))
        {
            return false;
        }
        if (saveSse && !context.TryWrite(area + 160, state.Slice(160, xmmBytes), write))
        {
            return false;
        }
        for (int i = 2; i < 63; i++)
        {
            if ((rfbm & (1UL << i)) == 0 || !XsaveLayout.Known(i) || (compacted && (inUse & (1UL << i)) == 0))
            {
                continue;
            }
            int offset = compacted ? XsaveLayout.CompactedOffset(rfbm, i) : XsaveLayout.StandardOffset(i);
            if (!context.TryWrite(area + (ulong)offset, state.Slice(XsaveLayout.StandardOffset(i), XsaveLayout.Size(i)), write))
            {
                return false;
            }
        }
        Span<byte> header = stackalloc byte[compacted ? 64 : 8];
        if (compacted)
        {
            header.Clear();
            BinaryPrimitives.WriteUInt64LittleEndian(header, inUse);
            BinaryPrimitives.WriteUInt64LittleEndian(header[8..], rfbm | Compacted);
        }
        else
        {
            if (!context.TryRead(area + XsaveLayout.Header, header, context.DataAccess(write: false)))
            {
                return false;
            }
            ulong old = BinaryPrimitives.ReadUInt64LittleEndian(header);
            BinaryPrimitives.WriteUInt64LittleEndian(header, (old & ~rfbm) | inUse);
        }
        return context.TryWrite(area + XsaveLayout.Header, header, write);
    }

    private static bool Restore(EmulationContext context, ulong area, ulong xcr0, ulong rfbm, bool supervisor, uint mxcsrMask)
    {
        AccessKind read = context.DataAccess(write: false);
        Span<byte> header = stackalloc byte[64];
        if (!context.TryRead(area + XsaveLayout.Header, header, read))
        {
            return false;
        }
        ulong xstateBv = BinaryPrimitives.ReadUInt64LittleEndian(header);
        ulong xcompBv = BinaryPrimitives.ReadUInt64LittleEndian(header[8..]);
        bool compacted = (xcompBv & Compacted) != 0;
        bool valid = compacted
            ? (xcompBv & ~Compacted & ~xcr0) == 0 && (xstateBv & ~(xcompBv & ~Compacted)) == 0 && !header[16..].ContainsAnyExcept((byte)0)
            : !supervisor && (xstateBv & ~xcr0) == 0 && !header[8..].ContainsAnyExcept((byte)0);
        if (!valid)
        {
            return context.Raise(EmulationContext.GP, 0);
        }
        if (!context.TryProbe(area, XsaveLayout.AreaSize(compacted ? xcompBv & ~Compacted : rfbm, compacted), read))
        {
            return false;
        }
        // Read everything into a copy first: a fault or a #GP part-way leaves the vCPU's state as it was.
        Span<byte> state = context.Xsave();
        Span<byte> next = stackalloc byte[4096];
        state.CopyTo(next);
        int xmmBytes = context.Bitness == 64 ? 256 : 128;
        if ((rfbm & 1) != 0)
        {
            if ((xstateBv & 1) != 0)
            {
                if (!context.TryRead(area, next[..24], read) || !context.TryRead(area + 32, next[32..160], read))
                {
                    return false;
                }
            }
            else
            {
                next[..24].Clear();
                next[32..160].Clear();
                BinaryPrimitives.WriteUInt16LittleEndian(next, 0x37f); // FCW's initial value
            }
        }
        bool loadMxcsr = compacted ? (rfbm & xstateBv & 2) != 0 : (rfbm & 6) != 0;
        if (loadMxcsr)
        {
            if (!context.TryRead(area + 24, next.Slice(24, 4), read))
            {
                return false;
            }
            if ((BinaryPrimitives.ReadUInt32LittleEndian(next[24..]) & ~mxcsrMask) != 0)
            {
                return context.Raise(EmulationContext.GP, 0);
            }
        }
        else if (compacted && (rfbm & 2) != 0)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(next[24..], 0x1f80);
        }
        if ((rfbm & 2) != 0)
        {
            if ((xstateBv & 2) != 0)
            {
                if (!context.TryRead(area + 160, next.Slice(160, xmmBytes), read))
                {
                    return false;
                }
            }
            else
            {
                next.Slice(160, xmmBytes).Clear();
            }
        }
        for (int i = 2; i < 63; i++)
        {
            if ((rfbm & (1UL << i)) == 0 || !XsaveLayout.Known(i))
            {
                continue;
            }
            Span<byte> component = next.Slice(XsaveLayout.StandardOffset(i), XsaveLayout.Size(i));
            if ((xstateBv & (1UL << i)) == 0)
            {
                component.Clear();
                continue;
            }
            int offset = compacted ? XsaveLayout.CompactedOffset(xcompBv & ~Compacted, i) : XsaveLayout.StandardOffset(i);
            if (!context.TryRead(area + (ulong)offset, component, read))
            {
                return false;
            }
        }
        ulong bv = BinaryPrimitives.ReadUInt64LittleEndian(next[XsaveLayout.Header..]);
        BinaryPrimitives.WriteUInt64LittleEndian(next[XsaveLayout.Header..], (bv & ~rfbm) | (xstateBv & rfbm));
        next.CopyTo(state);
        context.XsaveChanged();
        return true;
    }
}
