using VmmSharp.Arch.X86;
using VmmSharp.Boot;
using VmmSharp.State;

namespace VmmSharp.Machine;

/// <summary>
/// The "machine" section of a snapshot: what a new process needs to build the same machine again (memory size, vCPU
/// count, CPUID choices, devices and their host side: disk paths, TAP names, console device) and what the kernel loader
/// did (<see cref="BootResult"/>), so a restored machine reports the same <see cref="PcMachine.Boot"/>.
/// Version 2 added the vsock device (version 1, which had none, is still read).
/// </summary>
internal static class SnapshotConfiguration
{
    public const ushort Version = 2;
    private const int MaxPath = 4096;
    private const int MaxItems = 256;

    public static byte[] Write(MachineOptions o, BootResult boot)
    {
        var w = new StateWriter(1024);
        w.WriteString(o.KernelPath);
        w.WriteString(o.InitrdPath ?? "");
        w.WriteString(o.CommandLine);
        w.WriteUInt64(o.MemorySize);
        w.WriteInt32(o.CpuCount);
        w.WriteInt32(o.CpuidMasks.Count);
        foreach (CpuidMask m in o.CpuidMasks)
        {
            w.WriteUInt32(m.Function);
            w.WriteBool(m.Index.HasValue);
            w.WriteUInt32(m.Index ?? 0);
            w.WriteInt32((int)m.Register);
            w.WriteUInt32(m.Bits);
        }
        w.WriteInt32((int)o.CpuidPolicy);
        w.WriteInt32((int)o.OnReset);
        w.WriteInt32(o.ResetExitStatus);
        w.WriteInt32(o.MaxReboots);
        w.WriteBool(o.EmulationFallback);
        w.WriteBool(o.Rng);
        w.WriteInt32(o.Disks.Count);
        foreach (DiskOptions d in o.Disks)
        {
            w.WriteString(d.Path);
            w.WriteBool(d.ReadOnly);
            w.WriteString(d.Serial ?? "");
        }
        w.WriteInt32(o.Networks.Count);
        foreach (NetOptions n in o.Networks)
        {
            w.WriteString(n.Tap);
            w.WriteBytes(n.Mac ?? []);
        }
        w.WriteInt32((int)o.ConsoleDevice);
        w.WriteBool(o.VirtioOnCommandLine);
        w.WriteBool(o.TrackDirtyPages);
        w.WriteBool(o.Vsock is not null);
        w.WriteUInt64(o.Vsock?.GuestCid ?? 0);
        w.WriteString(o.Vsock?.SocketPath ?? "");
        WriteBoot(w, boot);
        return w.WrittenSpan.ToArray();
    }

    public static (MachineOptions Options, BootResult Boot) Read(ReadOnlySpan<byte> data, ushort version)
    {
        var r = new StateReader(data, "machine");
        StateFormatException.ThrowIfUnknownVersion("machine", version, Version);
        string kernel = r.ReadString(MaxPath, "kernel path");
        string initrd = r.ReadString(MaxPath, "initrd path");
        string cmdline = r.ReadString(64 << 10, "command line");
        ulong memory = r.ReadUInt64("memory size");
        int cpus = Count(ref r, "vCPU count", 1, MpTable.MaxCpus);
        var masks = new List<CpuidMask>();
        for (int i = Count(ref r, "CPUID mask count", 0, MaxItems); i > 0; i--)
        {
            uint function = r.ReadUInt32("CPUID mask leaf");
            bool hasIndex = r.ReadBool("CPUID mask has subleaf");
            uint index = r.ReadUInt32("CPUID mask subleaf");
            var register = (CpuidRegister)Enumerated<CpuidRegister>(ref r, "CPUID mask register");
            masks.Add(new CpuidMask(function, hasIndex ? index : null, register, r.ReadUInt32("CPUID mask bits")));
        }
        var policy = (CpuidPolicy)Enumerated<CpuidPolicy>(ref r, "CPUID policy");
        var onReset = (ResetAction)Enumerated<ResetAction>(ref r, "reset action");
        int resetStatus = r.ReadInt32("reset exit status");
        int maxReboots = Count(ref r, "max reboots", 0, int.MaxValue);
        bool fallback = r.ReadBool("emulation fallback");
        bool rng = r.ReadBool("rng");
        var disks = new List<DiskOptions>();
        for (int i = Count(ref r, "disk count", 0, MaxItems); i > 0; i--)
        {
            string path = r.ReadString(MaxPath, "disk path");
            bool ro = r.ReadBool("disk read-only");
            string serial = r.ReadString(64, "disk serial");
            disks.Add(new DiskOptions(path) { ReadOnly = ro, Serial = serial.Length == 0 ? null : serial });
        }
        var nets = new List<NetOptions>();
        for (int i = Count(ref r, "network count", 0, MaxItems); i > 0; i--)
        {
            string tap = r.ReadString(64, "TAP name");
            byte[] mac = r.ReadBytes(6, "MAC").ToArray();
            nets.Add(new NetOptions(tap) { Mac = mac.Length == 0 ? null : mac });
        }
        var console = (ConsoleDevice)Enumerated<ConsoleDevice>(ref r, "console device");
        bool virtioCmdline = r.ReadBool("virtio on command line");
        bool dirty = r.ReadBool("track dirty pages");
        VsockOptions? vsock = null;
        if (version >= 2)
        {
            bool hasVsock = r.ReadBool("vsock");
            ulong cid = r.ReadUInt64("vsock guest cid");
            string socket = r.ReadString(MaxPath, "vsock socket path");
            vsock = hasVsock ? new VsockOptions(cid, socket) : null;
        }
        BootResult boot = ReadBoot(ref r);
        r.EnsureEnd();
        var options = new MachineOptions(kernel)
        {
            InitrdPath = initrd.Length == 0 ? null : initrd,
            CommandLine = cmdline,
            MemorySize = memory,
            CpuCount = cpus,
            CpuidMasks = masks,
            CpuidPolicy = policy,
            OnReset = onReset,
            ResetExitStatus = resetStatus,
            MaxReboots = maxReboots,
            EmulationFallback = fallback,
            Rng = rng,
            Disks = disks,
            Networks = nets,
            ConsoleDevice = console,
            VirtioOnCommandLine = virtioCmdline,
            TrackDirtyPages = dirty,
            Vsock = vsock,
        };
        return (options, boot);
    }

    private static void WriteBoot(StateWriter w, BootResult b)
    {
        w.WriteInt32((int)b.Format);
        w.WriteUInt64(b.KernelStart);
        w.WriteUInt64(b.KernelEnd);
        w.WriteUInt64(b.BootInfoAddress);
        w.WriteUInt64(b.CommandLineAddress);
        w.WriteUInt64(b.InitrdAddress ?? ulong.MaxValue);
        w.WriteUInt64(b.InitrdSize);
        w.WriteUInt64(b.MpTableAddress ?? ulong.MaxValue);
        w.WriteUInt64(b.AcpiRsdpAddress ?? ulong.MaxValue);
        w.WriteInt32(b.MemoryMap.Entries.Count);
        foreach (E820Entry e in b.MemoryMap.Entries)
        {
            w.WriteUInt64(e.Address);
            w.WriteUInt64(e.Size);
            w.WriteUInt32((uint)e.Type);
        }
        X86EntryState s = b.EntryState;
        w.WriteInt32((int)s.Mode);
        foreach (ulong v in (ReadOnlySpan<ulong>)[s.Rip, s.Rsp, s.Rax, s.Rbx, s.Rsi, s.Rdi, s.Rflags, s.Cr0, s.Cr3, s.Cr4, s.Efer, s.GdtBase, s.IdtBase])
        {
            w.WriteUInt64(v);
        }
        w.WriteUInt16(s.GdtLimit);
        w.WriteUInt16(s.IdtLimit);
        foreach (SegmentDescriptor d in (ReadOnlySpan<SegmentDescriptor>)[s.Cs, s.Ds, s.Es, s.Fs, s.Gs, s.Ss, s.Tr])
        {
            w.WriteUInt16(d.Selector);
            w.WriteUInt64(d.Base);
            w.WriteUInt32(d.Limit);
            w.WriteByte(d.Type);
            w.WriteByte(d.Dpl);
            w.WriteByte((byte)((d.Present ? 1 : 0) | (d.DefaultBig ? 2 : 0) | (d.CodeOrData ? 4 : 0) | (d.LongMode ? 8 : 0) | (d.Granularity ? 16 : 0)));
        }
    }

    private static BootResult ReadBoot(ref StateReader r)
    {
        var format = (KernelFormat)Enumerated<KernelFormat>(ref r, "kernel format");
        ulong kernelStart = r.ReadUInt64("kernel start"), kernelEnd = r.ReadUInt64("kernel end");
        ulong bootInfo = r.ReadUInt64("boot info address"), cmdline = r.ReadUInt64("command line address");
        ulong initrd = r.ReadUInt64("initrd address"), initrdSize = r.ReadUInt64("initrd size");
        ulong mp = r.ReadUInt64("MP table address"), rsdp = r.ReadUInt64("RSDP address");
        var map = new List<E820Entry>();
        for (int i = Count(ref r, "e820 entry count", 0, 1024); i > 0; i--)
        {
            map.Add(new E820Entry(r.ReadUInt64("e820 address"), r.ReadUInt64("e820 size"), (E820Type)r.ReadUInt32("e820 type")));
        }
        var mode = (X86CpuMode)Enumerated<X86CpuMode>(ref r, "entry mode");
        ulong[] v = new ulong[13];
        for (int i = 0; i < v.Length; i++)
        {
            v[i] = r.ReadUInt64("entry register");
        }
        ushort gdtLimit = r.ReadUInt16("GDT limit"), idtLimit = r.ReadUInt16("IDT limit");
        var seg = new SegmentDescriptor[7];
        for (int i = 0; i < seg.Length; i++)
        {
            ushort selector = r.ReadUInt16("selector");
            ulong @base = r.ReadUInt64("segment base");
            uint limit = r.ReadUInt32("segment limit");
            byte type = r.ReadByte("segment type"), dpl = r.ReadByte("segment DPL"), f = r.ReadByte("segment flags");
            seg[i] = new SegmentDescriptor(selector, @base, limit, type, (f & 1) != 0, dpl, (f & 2) != 0, (f & 4) != 0, (f & 8) != 0, (f & 16) != 0);
        }
        return new BootResult
        {
            Format = format,
            KernelStart = kernelStart,
            KernelEnd = kernelEnd,
            BootInfoAddress = bootInfo,
            CommandLineAddress = cmdline,
            InitrdAddress = initrd == ulong.MaxValue ? null : initrd,
            InitrdSize = initrdSize,
            MpTableAddress = mp == ulong.MaxValue ? null : mp,
            AcpiRsdpAddress = rsdp == ulong.MaxValue ? null : rsdp,
            MemoryMap = new E820Map(map),
            EntryState = new X86EntryState
            {
                Mode = mode,
                Rip = v[0],
                Rsp = v[1],
                Rax = v[2],
                Rbx = v[3],
                Rsi = v[4],
                Rdi = v[5],
                Rflags = v[6],
                Cr0 = v[7],
                Cr3 = v[8],
                Cr4 = v[9],
                Efer = v[10],
                GdtBase = v[11],
                IdtBase = v[12],
                GdtLimit = gdtLimit,
                IdtLimit = idtLimit,
                Cs = seg[0],
                Ds = seg[1],
                Es = seg[2],
                Fs = seg[3],
                Gs = seg[4],
                Ss = seg[5],
                Tr = seg[6],
            },
        };
    }

    private static int Count(ref StateReader r, string field, int min, int max)
    {
        int n = r.ReadInt32(field);
        return n >= min && n <= max ? n : throw r.Invalid(field, n, $"is not {min} to {max}");
    }

    private static int Enumerated<T>(ref StateReader r, string field)
        where T : struct, Enum
    {
        int n = r.ReadInt32(field);
        return Enum.IsDefined(System.Runtime.CompilerServices.Unsafe.As<int, T>(ref n)) ? n : throw r.Invalid(field, n, $"is not a {typeof(T).Name}");
    }
}
