using System.Runtime.CompilerServices;
using VmmSharp.Arch.X86;
using VmmSharp.Memory;

namespace VmmSharp.Boot;

/// <summary>
/// Loads a Multiboot v1 kernel as QEMU's <c>-kernel</c> does: by the header's address fields when flag 16 (the a.out kludge)
/// is set, else as an ELF32; then builds the MBI (memory sizes, command line "path args", the initrd as module 0, memory map)
/// and enters in 32-bit protected mode with EAX = 0x2BADB002 and EBX = the MBI.
/// </summary>
public static class MultibootLoader
{
    // Bits 3-15 are requirements a loader must understand or refuse; 0 and 1 we satisfy, 2 (video) is best-effort per QEMU.
    private const uint UnknownRequiredFlags = 0xfff8;

    /// <summary>The name the MBI gives for the boot loader.</summary>
    public const string BootLoaderName = "VmmSharp";

    /// <summary>Loads the Multiboot kernel of <paramref name="request"/> into <paramref name="memory"/>.</summary>
    /// <exception cref="InvalidKernelImageException">No valid Multiboot header, unsupported flags, a truncated image, or it does not fit in RAM.</exception>
    /// <exception cref="ArgumentException">The command line is too long.</exception>
    public static BootResult Load(GuestMemory memory, BootRequest request)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(request);
        ReadOnlySpan<byte> image = request.Kernel.Span;
        int offset = MultibootHeader.Find(image, out _, out _);
        if (offset < 0)
        {
            throw new InvalidKernelImageException($"no Multiboot header (magic 0x{MultibootHeader.HeaderMagic:x} with a valid checksum) in the first {MultibootHeader.SearchLimit} bytes");
        }
        MultibootHeader header = MultibootHeader.Read(image, offset);
        if ((header.Flags & UnknownRequiredFlags) != 0)
        {
            throw new InvalidKernelImageException(
                $"Multiboot header flags 0x{header.Flags:x} require features 0x{header.Flags & UnknownRequiredFlags:x} (bits 3-15) that this loader does not provide");
        }
        (ulong start, ulong end, ulong entry) = (header.Flags & MultibootHeader.FlagAddressFields) != 0
            ? LoadByAddressFields(memory, image, offset, header)
            : LoadElf(memory, image);
        if (entry > uint.MaxValue)
        {
            throw new InvalidKernelImageException($"Multiboot entry point 0x{entry:x} is not a 32-bit address");
        }

        E820Map map = E820Map.FromMemory(memory);
        string commandLine = request.CommandLine.Length > 0 ? $"{request.KernelPath} {request.CommandLine}" : request.KernelPath;
        GuestPlacement.WriteCString(memory, Layout.CommandLine, commandLine, Layout.CommandLineCapacity - 1, "Multiboot command line");
        GuestPlacement.WriteCString(memory, Layout.MultibootBootLoaderName, BootLoaderName, 15, "boot loader name");

        var info = new MultibootInfo
        {
            Flags = MultibootInfo.FlagMemory | MultibootInfo.FlagCommandLine | MultibootInfo.FlagModules
                | MultibootInfo.FlagMemoryMap | MultibootInfo.FlagBootLoaderName,
            MemLower = (uint)(Layout.EbdaStart / 1024),
            MemUpper = (uint)((map.LowRamEnd - Layout.HighMemoryStart) / 1024),
            CommandLine = (uint)Layout.CommandLine,
            ModulesAddress = (uint)Layout.MultibootModuleList,
            BootLoaderName = (uint)Layout.MultibootBootLoaderName,
        };

        ulong? initrdAddress = null;
        ulong initrdSize = 0;
        if (!request.Initrd.IsEmpty)
        {
            ReadOnlyMemory<byte> initrd = request.Initrd;
            // QEMU page-aligns every module whatever flag bit 0 says; that also satisfies a kernel that asks.
            initrdAddress = GuestPlacement.PageAlign(end);
            initrdSize = (ulong)initrd.Length;
            if (initrdAddress.Value + initrdSize > Layout.FourGiB)
            {
                throw new InvalidKernelImageException($"initrd of 0x{initrdSize:x} bytes at 0x{initrdAddress:x} would end above 4 GiB, out of a Multiboot module's reach");
            }
            GuestPlacement.EnsureFits(memory, initrdAddress.Value, initrdSize, "initrd");
            memory.Write(initrdAddress.Value, initrd.Span);
            GuestPlacement.WriteCString(memory, Layout.ModuleCommandLines, request.InitrdPath, Layout.ModuleCommandLinesCapacity - 1, "initrd module command line");
            memory.Write(Layout.MultibootModuleList, new MultibootModule
            {
                Start = (uint)initrdAddress.Value,
                End = (uint)(initrdAddress.Value + initrdSize),
                CommandLine = (uint)Layout.ModuleCommandLines,
            });
            info.ModulesCount = 1;
        }

        int entrySize = Unsafe.SizeOf<MultibootMemoryMapEntry>();
        if (Layout.MultibootMemoryMap + (ulong)(map.Entries.Count * entrySize) > Layout.MultibootMemoryMapEnd)
        {
            throw new InvalidOperationException($"a memory map of {map.Entries.Count} entries does not fit the Multiboot memory map area");
        }
        for (int i = 0; i < map.Entries.Count; i++)
        {
            E820Entry e = map.Entries[i];
            memory.Write(Layout.MultibootMemoryMap + (ulong)(i * entrySize), new MultibootMemoryMapEntry
            {
                Size = MultibootMemoryMapEntry.EntrySize,
                BaseAddress = e.Address,
                Length = e.Size,
                Type = (uint)e.Type,
            });
        }
        info.MemoryMapAddress = (uint)Layout.MultibootMemoryMap;
        info.MemoryMapLength = (uint)(map.Entries.Count * entrySize);
        memory.Write(Layout.MultibootInfo, info);

        return new BootResult
        {
            Format = KernelFormat.Multiboot,
            EntryState = X86EntryState.Protected32(memory, (uint)entry, eax: MultibootHeader.BootloaderMagic, ebx: (uint)Layout.MultibootInfo),
            MemoryMap = map,
            KernelStart = start,
            KernelEnd = end,
            BootInfoAddress = Layout.MultibootInfo,
            CommandLineAddress = Layout.CommandLine,
            InitrdAddress = initrdAddress,
            InitrdSize = initrdSize,
        };
    }

    private static (ulong Start, ulong End, ulong Entry) LoadByAddressFields(GuestMemory memory, ReadOnlySpan<byte> image, int offset, MultibootHeader h)
    {
        if (offset + MultibootHeader.AddressFieldsEnd > image.Length)
        {
            throw new InvalidKernelImageException(
                $"kernel image truncated: the Multiboot header at 0x{offset:x} needs its address fields up to 0x{offset + MultibootHeader.AddressFieldsEnd:x} but the file has 0x{image.Length:x} bytes");
        }
        if (h.HeaderAddress < h.LoadAddress || h.HeaderAddress - h.LoadAddress > (uint)offset)
        {
            throw new InvalidKernelImageException(
                $"Multiboot header_addr 0x{h.HeaderAddress:x} and load_addr 0x{h.LoadAddress:x} put the load start before the file's first byte (header at file offset 0x{offset:x})");
        }
        ulong fileStart = (ulong)offset - (h.HeaderAddress - h.LoadAddress);
        ulong loadEnd = h.LoadEndAddress == 0 ? h.LoadAddress + ((ulong)image.Length - fileStart) : h.LoadEndAddress;
        if (loadEnd < h.LoadAddress)
        {
            throw new InvalidKernelImageException($"Multiboot load_end_addr 0x{h.LoadEndAddress:x} is below load_addr 0x{h.LoadAddress:x}");
        }
        ulong loadSize = loadEnd - h.LoadAddress;
        if (fileStart + loadSize > (ulong)image.Length)
        {
            throw new InvalidKernelImageException(
                $"kernel image truncated: Multiboot load_end_addr 0x{loadEnd:x} needs 0x{loadSize:x} bytes from file offset 0x{fileStart:x} but the file has 0x{image.Length:x} bytes");
        }
        ulong bssEnd = h.BssEndAddress == 0 ? loadEnd : h.BssEndAddress;
        if (bssEnd < loadEnd)
        {
            throw new InvalidKernelImageException($"Multiboot bss_end_addr 0x{h.BssEndAddress:x} is below load_end_addr 0x{loadEnd:x}");
        }
        if (bssEnd == h.LoadAddress)
        {
            throw new InvalidKernelImageException(
                $"Multiboot kernel loads nothing: load_addr 0x{h.LoadAddress:x}, load_end_addr 0x{h.LoadEndAddress:x} and bss_end_addr 0x{h.BssEndAddress:x} leave no bytes to load");
        }
        if (h.LoadAddress < Layout.HighMemoryStart)
        {
            throw new InvalidKernelImageException(
                $"Multiboot load_addr 0x{h.LoadAddress:x} is below 0x{Layout.HighMemoryStart:x} (1 MiB) where the boot tables live");
        }
        GuestPlacement.EnsureFits(memory, h.LoadAddress, bssEnd - h.LoadAddress, "Multiboot kernel");
        memory.Write(h.LoadAddress, image.Slice((int)fileStart, (int)loadSize));
        memory.Fill(loadEnd, bssEnd - loadEnd, 0);
        return (h.LoadAddress, bssEnd, h.EntryAddress);
    }

    private static (ulong Start, ulong End, ulong Entry) LoadElf(GuestMemory memory, ReadOnlySpan<byte> image)
    {
        if (!ElfImage.HasElfMagic(image))
        {
            throw new InvalidKernelImageException(
                $"Multiboot kernel without the a.out kludge (header flag 16) must be ELF, but it starts with {KernelImage.Hex(image)}");
        }
        ElfImage elf = ElfImage.Parse(image);
        if (elf.Is64Bit)
        {
            throw new InvalidKernelImageException(
                "Multiboot kernel is ELF64; without the a.out kludge (header flag 16) Multiboot loads only ELF32 images");
        }
        (ulong start, ulong end) = elf.LoadSegments(memory, image);
        return (start, end, elf.PhysicalEntry());
    }
}
