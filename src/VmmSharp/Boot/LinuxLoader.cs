using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using VmmSharp.Arch.X86;
using VmmSharp.Memory;

namespace VmmSharp.Boot;

/// <summary>
/// Boots a Linux bzImage through the 64-bit boot protocol (boot.rst, protocol 2.06 and later with XLF_KERNEL_64):
/// loads the protected-mode kernel (a relocatable one where it will run: pref_address aligned to kernel_alignment;
/// a non-relocatable one at 1 MiB), checks that init_size bytes of RAM lie where the kernel runs, fills the zero page
/// from the image's setup header, places the initrd high and clear of the kernel, and enters in long mode at the load
/// address + 0x200 with RSI = the zero page.
/// </summary>
public static class LinuxLoader
{
    /// <summary>The oldest boot protocol accepted: 2.06 brings cmdline_size.</summary>
    public const ushort MinimumProtocol = 0x206;

    /// <summary>The 64-bit entry's offset from the protected-mode kernel's load address.</summary>
    public const ulong Entry64Offset = 0x200;

    private const int SectorSize = 512;

    /// <summary>Loads the bzImage of <paramref name="request"/> into <paramref name="memory"/>.</summary>
    /// <exception cref="InvalidKernelImageException">
    /// Truncated, wrong magic, protocol older than 2.06, no 64-bit entry, a kernel_alignment that is not a power of two,
    /// or the kernel (its init_size where it runs) or initrd not fitting in RAM.
    /// </exception>
    /// <exception cref="ArgumentException">The command line is longer than the kernel's cmdline_size.</exception>
    public static BootResult Load(GuestMemory memory, BootRequest request)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(request);
        ReadOnlySpan<byte> image = request.Kernel.Span;
        SetupHeader hdr = ReadSetupHeader(image);

        int setupSects = hdr.SetupSects == 0 ? 4 : hdr.SetupSects;
        int kernelOffset = (setupSects + 1) * SectorSize;
        if (kernelOffset >= image.Length)
        {
            throw new InvalidKernelImageException(
                $"kernel image truncated: setup_sects {hdr.SetupSects} puts the protected-mode kernel at 0x{kernelOffset:x} but the file has 0x{image.Length:x} bytes");
        }
        ReadOnlySpan<byte> kernel = image[kernelOffset..];
        (ulong load, ulong runtime, ulong needed) = Place(hdr, (ulong)kernel.Length);
        GuestPlacement.EnsureFits(memory, load, (ulong)kernel.Length, "kernel");
        GuestPlacement.EnsureFits(memory, runtime, needed, hdr.RelocatableKernel != 0
            ? "kernel, which runs at its pref_address aligned to kernel_alignment (init_size),"
            : "non-relocatable kernel, which runs at its pref_address (init_size),");
        memory.Write(load, kernel);
        // Nothing may go where the kernel lies or where it decompresses and starts.
        ulong kernelEnd = Math.Max(load + (ulong)kernel.Length, runtime + needed);

        E820Map map = E820Map.FromMemory(memory);
        if (map.Entries.Count > BootParams.E820MaxEntries)
        {
            throw new InvalidOperationException($"a memory map of {map.Entries.Count} entries exceeds the zero page's {BootParams.E820MaxEntries}");
        }

        int cmdlineMax = (int)Math.Min(hdr.CmdlineSize, (uint)Layout.CommandLineCapacity - 1);
        GuestPlacement.WriteCString(memory, Layout.CommandLine, request.CommandLine, cmdlineMax, $"kernel command line (the kernel's cmdline_size is {hdr.CmdlineSize})");

        ulong? initrdAddress = null;
        ulong initrdSize = 0;
        if (!request.Initrd.IsEmpty)
        {
            ReadOnlyMemory<byte> initrd = request.Initrd;
            initrdSize = (ulong)initrd.Length;
            uint addrMax = hdr.InitrdAddrMax == 0 ? SetupHeader.DefaultInitrdAddrMax : hdr.InitrdAddrMax;
            initrdAddress = GuestPlacement.PlaceHigh(map, initrdSize, kernelEnd, (ulong)addrMax + 1);
            memory.Write(initrdAddress.Value, initrd.Span);
        }

        WriteZeroPage(memory, hdr, map, initrdAddress ?? 0, initrdSize);
        return new BootResult
        {
            Format = KernelFormat.BzImage,
            EntryState = X86EntryState.Long64(memory, load + Entry64Offset, rsi: Layout.ZeroPage, rsp: Layout.BootStackPointer),
            MemoryMap = map,
            KernelStart = load,
            KernelEnd = kernelEnd,
            BootInfoAddress = Layout.ZeroPage,
            CommandLineAddress = Layout.CommandLine,
            InitrdAddress = initrdAddress,
            InitrdSize = initrdSize,
        };
    }

    /// <summary>
    /// Where the protected-mode kernel is loaded, where it runs (boot.rst, "init_size": a relocatable kernel moves
    /// up to pref_address if loaded below it, aligned to kernel_alignment; a non-relocatable one to pref_address),
    /// and how much RAM it needs from there (init_size, never less than the image).
    /// </summary>
    private static (ulong Load, ulong Runtime, ulong Needed) Place(SetupHeader hdr, ulong kernelLength)
    {
        ulong needed = Math.Max(hdr.InitSize, kernelLength);
        // pref_address exists from protocol 2.10; older headers leave it zero.
        ulong pref = hdr.Version >= 0x20a ? hdr.PrefAddress : 0;
        if (hdr.RelocatableKernel == 0)
        {
            return (Layout.HighMemoryStart, pref != 0 ? pref : Layout.HighMemoryStart, needed);
        }
        ulong align = hdr.KernelAlignment;
        if (align == 0 || !ulong.IsPow2(align))
        {
            throw new InvalidKernelImageException($"relocatable kernel's kernel_alignment 0x{align:x} is not a power of two");
        }
        // Loaded where it runs, so the decompressor has nothing to move and nothing lies outside the checked range.
        ulong start = Math.Max(Layout.HighMemoryStart, pref);
        if (start > ulong.MaxValue - align - needed)
        {
            throw new InvalidKernelImageException($"relocatable kernel's pref_address 0x{pref:x} is beyond any guest RAM");
        }
        ulong runtime = (start + align - 1) & ~(align - 1);
        return (runtime, runtime, needed);
    }

    /// <summary>Reads and checks the setup header: only the bytes the image's header has, the rest zero.</summary>
    private static SetupHeader ReadSetupHeader(ReadOnlySpan<byte> image)
    {
        if (image.Length < KernelImage.SetupHeaderMagicOffset + 6)
        {
            throw new InvalidKernelImageException(
                $"kernel image truncated: a bzImage setup header needs 0x{KernelImage.SetupHeaderMagicOffset + 6:x} bytes but the file has 0x{image.Length:x} bytes");
        }
        // The header's length is in the jump instruction at 0x200: 0x202 + its displacement byte.
        int end = KernelImage.SetupHeaderMagicOffset + image[0x201];
        if (end > image.Length)
        {
            throw new InvalidKernelImageException(
                $"kernel image truncated: the setup header ends at 0x{end:x} but the file has 0x{image.Length:x} bytes");
        }
        Span<byte> raw = stackalloc byte[Unsafe.SizeOf<SetupHeader>()];
        raw.Clear();
        image[SetupHeader.Offset..Math.Max(SetupHeader.Offset, Math.Min(end, SetupHeader.End))].CopyTo(raw);
        // Fields up to "version" are read even when the jump says the header is shorter, so the errors can name them.
        image[SetupHeader.Offset..(KernelImage.SetupHeaderMagicOffset + 6)].CopyTo(raw);
        SetupHeader hdr = MemoryMarshal.Read<SetupHeader>(raw);

        if (hdr.Header != KernelImage.SetupHeaderMagic)
        {
            throw new InvalidKernelImageException($"not a Linux bzImage: the setup header magic at 0x202 is 0x{hdr.Header:x}, expected 0x{KernelImage.SetupHeaderMagic:x} (\"HdrS\")");
        }
        if (hdr.BootFlag != SetupHeader.BootFlagValue)
        {
            throw new InvalidKernelImageException($"bzImage boot_flag at 0x1fe is 0x{hdr.BootFlag:x}, expected 0x{SetupHeader.BootFlagValue:x}");
        }
        if (hdr.Version < MinimumProtocol)
        {
            throw new InvalidKernelImageException(
                $"unsupported Linux boot protocol {ProtocolText(hdr.Version)}; need {ProtocolText(MinimumProtocol)} or later");
        }
        if ((hdr.LoadFlags & SetupHeader.LoadedHigh) == 0)
        {
            throw new InvalidKernelImageException($"a zImage (loadflags 0x{hdr.LoadFlags:x} without LOADED_HIGH) cannot be loaded; need a bzImage");
        }
        if ((hdr.XLoadFlags & SetupHeader.XlfKernel64) == 0)
        {
            throw new InvalidKernelImageException(
                $"kernel has no 64-bit entry point: xloadflags 0x{hdr.XLoadFlags:x} lacks XLF_KERNEL_64 (boot protocol {ProtocolText(hdr.Version)})");
        }
        return hdr;
    }

    private static void WriteZeroPage(GuestMemory memory, SetupHeader hdr, E820Map map, ulong initrdAddress, ulong initrdSize)
    {
        memory.Fill(Layout.ZeroPage, BootParams.Size, 0);
        hdr.TypeOfLoader = SetupHeader.UndefinedLoader;
        hdr.LoadFlags |= SetupHeader.LoadedHigh | SetupHeader.CanUseHeap;
        hdr.HeapEndPtr = Layout.LinuxSetupHeapEnd - 0x200;
        hdr.CmdLinePtr = (uint)Layout.CommandLine;
        hdr.RamdiskImage = (uint)initrdAddress;
        hdr.RamdiskSize = (uint)initrdSize;
        memory.Write(Layout.ZeroPage + SetupHeader.Offset, hdr);
        memory.Write(Layout.ZeroPage + BootParams.ExtCmdLinePtr, (uint)(Layout.CommandLine >> 32));
        memory.Write(Layout.ZeroPage + BootParams.ExtRamdiskImage, (uint)(initrdAddress >> 32));
        memory.Write(Layout.ZeroPage + BootParams.ExtRamdiskSize, (uint)(initrdSize >> 32));

        int entrySize = Unsafe.SizeOf<BootE820Entry>();
        for (int i = 0; i < map.Entries.Count; i++)
        {
            E820Entry e = map.Entries[i];
            memory.Write(Layout.ZeroPage + BootParams.E820Table + (ulong)(i * entrySize),
                new BootE820Entry { Address = e.Address, Size = e.Size, Type = (uint)e.Type });
        }
        memory.Write(Layout.ZeroPage + BootParams.E820Entries, (byte)map.Entries.Count);
    }

    private static string ProtocolText(ushort version) => $"{version >> 8}.{version & 0xff:d2}";
}
