using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace VmmSharp.Emulation;

/// <summary>
/// The guest's page-table walk, done by the VMM: 32-bit, PAE, 4- and 5-level paging, with the present, write,
/// user, NX, SMEP and SMAP checks the hardware makes, and the accessed and dirty bits it sets. A failed walk gives
/// the #PF error code the hardware would report.
/// </summary>
/// <remarks>
/// Page-table entries are read and their A/D bits set atomically on the guest's RAM, so walks on several vCPUs
/// and the guest's own updates do not lose bits. Not modelled: protection keys, and reserved physical-address bits
/// above MAXPHYADDR (only the architecturally reserved bits are checked).
/// </remarks>
public static class PageWalker
{
    /// <summary>#PF error-code bit: the fault was a protection violation on a present page.</summary>
    public const uint ErrorPresent = 1;

    /// <summary>#PF error-code bit: a reserved bit was set in a paging entry.</summary>
    public const uint ErrorReserved = 8;

    private const ulong Present = 1, Writable = 2, UserBit = 4, Accessed = 0x20, Dirty = 0x40, LargePage = 0x80;
    private const ulong ExecuteDisable = 1UL << 63;
    private const ulong AddressMask = 0x000f_ffff_ffff_f000;

    /// <summary>
    /// Translates <paramref name="linear"/> for <paramref name="access"/>. Returns true with the guest-physical
    /// address; false with the error code of the #PF the access raises (CR2 is then <paramref name="linear"/>).
    /// </summary>
    public static bool Translate(IGuestPhysicalSpace memory, in PagingContext context, ulong linear, AccessKind access,
        out ulong physical, out uint errorCode)
    {
        ArgumentNullException.ThrowIfNull(memory);
        return context.Mode switch
        {
            PagingMode.Off => Identity(linear, out physical, out errorCode),
            PagingMode.Bits32 => Walk32(memory, context, (uint)linear, access, out physical, out errorCode),
            _ => Walk64(memory, context, linear, access, out physical, out errorCode),
        };
    }

    private static bool Identity(ulong linear, out ulong physical, out uint errorCode)
    {
        physical = linear;
        errorCode = 0;
        return true;
    }

    private static bool Walk32(IGuestPhysicalSpace memory, in PagingContext context, uint linear, AccessKind access,
        out ulong physical, out uint errorCode)
    {
        physical = 0;
        ulong pdeAddress = (context.Cr3 & 0xffff_f000) + ((linear >> 22) * 4);
        if (!TryEntry32(memory, pdeAddress, out Span<byte> pdeRam))
        {
            errorCode = Fault(access, context, ErrorPresent | ErrorReserved);
            return false;
        }
        uint pde = Volatile.Read(ref Entry32(pdeRam));
        if ((pde & Present) == 0)
        {
            errorCode = Fault(access, context, 0);
            return false;
        }
        bool writable = (pde & Writable) != 0, user = (pde & UserBit) != 0;
        if ((pde & LargePage) != 0 && context.LargePages)
        {
            // PSE-36: PDE bits 20:13 are physical-address bits 39:32.
            physical = (pde & 0xffc0_0000UL) | ((ulong)(pde >> 13 & 0xff) << 32) | (linear & 0x3f_ffffUL);
            if (!Allowed(context, access, writable, user, nx: false))
            {
                errorCode = Fault(access, context, ErrorPresent);
                return false;
            }
            SetBits32(pdeRam, pde, (access & AccessKind.Write) != 0 ? Accessed | Dirty : Accessed);
            errorCode = 0;
            return true;
        }
        ulong pteAddress = (pde & 0xffff_f000UL) + ((linear >> 12 & 0x3ff) * 4);
        if (!TryEntry32(memory, pteAddress, out Span<byte> pteRam))
        {
            errorCode = Fault(access, context, ErrorPresent | ErrorReserved);
            return false;
        }
        uint pte = Volatile.Read(ref Entry32(pteRam));
        if ((pte & Present) == 0)
        {
            errorCode = Fault(access, context, 0);
            return false;
        }
        writable &= (pte & Writable) != 0;
        user &= (pte & UserBit) != 0;
        if (!Allowed(context, access, writable, user, nx: false))
        {
            errorCode = Fault(access, context, ErrorPresent);
            return false;
        }
        SetBits32(pdeRam, pde, Accessed);
        SetBits32(pteRam, pte, (access & AccessKind.Write) != 0 ? Accessed | Dirty : Accessed);
        physical = (pte & 0xffff_f000UL) | (linear & 0xfffUL);
        errorCode = 0;
        return true;
    }

    private static bool Walk64(IGuestPhysicalSpace memory, in PagingContext context, ulong linear, AccessKind access,
        out ulong physical, out uint errorCode)
    {
        physical = 0;
        ulong table;
        int shift;
        bool writable = true, user = true, nx = false;
        if (context.Mode == PagingMode.Pae)
        {
            ulong pdpteAddress = (context.Cr3 & 0xffff_ffe0) + ((linear >> 30 & 3) * 8);
            if (!TryEntry64(memory, pdpteAddress, out Span<byte> pdpteRam))
            {
                errorCode = Fault(access, context, ErrorPresent | ErrorReserved);
                return false;
            }
            ulong pdpte = Volatile.Read(ref Entry64(pdpteRam));
            if ((pdpte & Present) == 0)
            {
                errorCode = Fault(access, context, 0);
                return false;
            }
            // PAE PDPTEs have no access rights: bits 1, 2, 5-8 and 63 are reserved.
            if ((pdpte & (0x1e6UL | ExecuteDisable)) != 0)
            {
                errorCode = Fault(access, context, ErrorPresent | ErrorReserved);
                return false;
            }
            table = pdpte & AddressMask;
            shift = 21;
        }
        else
        {
            table = context.Cr3 & AddressMask;
            shift = context.Mode == PagingMode.FiveLevel ? 48 : 39;
        }

        // The entries passed on the way down, to set their accessed bits once the walk succeeds.
        Span<ulong> path = stackalloc ulong[5];
        int depth = 0;
        while (true)
        {
            ulong entryAddress = table + ((linear >> shift & 0x1ff) * 8);
            if (!TryEntry64(memory, entryAddress, out Span<byte> ram))
            {
                errorCode = Fault(access, context, ErrorPresent | ErrorReserved);
                return false;
            }
            ulong entry = Volatile.Read(ref Entry64(ram));
            if ((entry & Present) == 0)
            {
                errorCode = Fault(access, context, 0);
                return false;
            }
            bool large = shift != 12 && (entry & LargePage) != 0;
            bool reserved = ((entry & ExecuteDisable) != 0 && !context.NoExecute)
                || (large && shift > 30)
                || (large && (entry & (((1UL << shift) - 1) & ~0x1fffUL)) != 0); // bit 12 is PAT; the rest below the page is reserved
            if (reserved)
            {
                errorCode = Fault(access, context, ErrorPresent | ErrorReserved);
                return false;
            }
            writable &= (entry & Writable) != 0;
            user &= (entry & UserBit) != 0;
            nx |= context.NoExecute && (entry & ExecuteDisable) != 0;
            path[depth++] = entryAddress;
            if (large || shift == 12)
            {
                ulong pageMask = (1UL << shift) - 1;
                physical = (entry & AddressMask & ~pageMask) | (linear & pageMask);
                break;
            }
            table = entry & AddressMask;
            shift -= 9;
        }
        if (!Allowed(context, access, writable, user, nx))
        {
            errorCode = Fault(access, context, ErrorPresent);
            return false;
        }
        for (int i = 0; i < depth; i++)
        {
            bool leaf = i == depth - 1;
            ulong bits = leaf && (access & AccessKind.Write) != 0 ? Accessed | Dirty : Accessed;
            if (TryEntry64(memory, path[i], out Span<byte> ram))
            {
                ref long e = ref Unsafe.As<byte, long>(ref MemoryMarshal.GetReference(ram));
                if (((ulong)Volatile.Read(ref e) & bits) != bits)
                {
                    Interlocked.Or(ref e, (long)bits);
                }
            }
        }
        errorCode = 0;
        return true;
    }

    private static bool Allowed(in PagingContext context, AccessKind access, bool writable, bool user, bool nx)
    {
        bool write = (access & AccessKind.Write) != 0, fetch = (access & AccessKind.Fetch) != 0;
        if ((access & AccessKind.User) != 0)
        {
            if (!user || (write && !writable))
            {
                return false;
            }
        }
        else
        {
            if (write && !writable && context.WriteProtect)
            {
                return false;
            }
            if (user && fetch && context.Smep)
            {
                return false;
            }
            if (user && !fetch && context.Smap && !context.AlignmentCheck)
            {
                return false;
            }
        }
        return !(fetch && nx);
    }

    private static uint Fault(AccessKind access, in PagingContext context, uint bits)
    {
        uint code = bits | ((uint)access & (uint)(AccessKind.Write | AccessKind.User));
        // The I/D bit is reported only where instruction fetches can fault by themselves.
        if ((access & AccessKind.Fetch) != 0 && (context.NoExecute || context.Smep))
        {
            code |= (uint)AccessKind.Fetch;
        }
        return code;
    }

    private static bool TryEntry32(IGuestPhysicalSpace memory, ulong address, out Span<byte> ram)
        => memory.TryGetRam(address, 4, write: false, out ram);

    private static bool TryEntry64(IGuestPhysicalSpace memory, ulong address, out Span<byte> ram)
        => memory.TryGetRam(address, 8, write: false, out ram);

    private static ref uint Entry32(Span<byte> ram) => ref Unsafe.As<byte, uint>(ref MemoryMarshal.GetReference(ram));

    private static ref ulong Entry64(Span<byte> ram) => ref Unsafe.As<byte, ulong>(ref MemoryMarshal.GetReference(ram));

    private static void SetBits32(Span<byte> ram, uint entry, ulong bits)
    {
        if ((entry & bits) != bits)
        {
            Interlocked.Or(ref Unsafe.As<byte, int>(ref MemoryMarshal.GetReference(ram)), (int)bits);
        }
    }
}
