<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="zh_CN" sourcelanguage="en">
  <context>
    <name>Applet</name>
    <message>
      <source>Hotspot Guard</source>
      <translation>热点守护</translation>
    </message>
  </context>
  <context>
    <name>ChainsDialog</name>
    <message>
      <source>Hook / chain / rule</source>
      <translation>钩子 / 链 / 规则</translation>
    </message>
    <message>
      <source>Owner</source>
      <translation>所属程序</translation>
    </message>
    <message>
      <source>Priority</source>
      <translation>优先级</translation>
    </message>
    <message>
      <source>Policy</source>
      <translation>默认策略</translation>
    </message>
    <message>
      <source>This flow</source>
      <translation>本流量</translation>
    </message>
    <message>
      <source>crossed</source>
      <translation>经过</translation>
    </message>
    <message>
      <source>no base chain</source>
      <translation>没有基础链</translation>
    </message>
    <message>
      <source>policy {policy}</source>
      <translation>默认策略 {policy}</translation>
    </message>
    <message>
      <source>{family} table {table} ({source}), chain {chain}: {type} hook {hook} priority {priority}, policy {policy}; {rules} rules</source>
      <translation>{family} 表 {table}（{source}），链 {chain}：{type} 类型，钩子 {hook}，优先级 {priority}，默认策略 {policy}；共 {rules} 条规则</translation>
    </message>
    <message>
      <source>Firewall chains</source>
      <translation>防火墙链</translation>
    </message>
    <message>
      <source>No flow (IPv4 chains)</source>
      <translation>不选流量（IPv4 链）</translation>
    </message>
    <message>
      <source>Search rules, chains, owners…</source>
      <translation>搜索规则、链、所属程序…</translation>
    </message>
    <message>
      <source>Copy as text</source>
      <translation>复制为文本</translation>
    </message>
    <message>
      <source>Flow:</source>
      <translation>流量：</translation>
    </message>
    <message>
      <source>Every base chain on every hook, by priority. Pick a flow to see the path its packet takes.</source>
      <translation>按优先级列出每个钩子上的所有基础链。选择一种流量，查看其数据包经过的路径。</translation>
    </message>
    <message>
      <source>{flow}: dropped by {owner} — {where}: {rule}</source>
      <translation>{flow}：被 {owner} 丢弃 — {where}：{rule}</translation>
    </message>
    <message>
      <source>{flow}: cannot be decided ({reason})</source>
      <translation>{flow}：无法判定（{reason}）</translation>
    </message>
    <message>
      <source>{flow}: gets through</source>
      <translation>{flow}：可以通过</translation>
    </message>
  </context>
  <context>
    <name>Controller</name>
    <message>
      <source>The privileged helper did not answer.</source>
      <translation>特权辅助程序没有应答。</translation>
    </message>
    <message>
      <source>There is no system bus: the helper needs D-Bus (package dbus).</source>
      <translation>没有系统总线：辅助程序需要 D-Bus（软件包 dbus）。</translation>
    </message>
    <message>
      <source>The system bus went away.</source>
      <translation>系统总线已断开。</translation>
    </message>
    <message>
      <source>The privileged helper cannot be reached.</source>
      <translation>无法连接特权辅助程序。</translation>
    </message>
    <message>
      <source>Not allowed: the system's policy refused this change.</source>
      <translation>不允许：系统策略拒绝了此更改。</translation>
    </message>
    <message>
      <source>This needs your password, but no authentication agent is running.</source>
      <translation>此操作需要输入密码，但没有运行身份验证代理。</translation>
    </message>
    <message>
      <source>The firewall changed meanwhile: look at the plan again.</source>
      <translation>防火墙在此期间发生了变化：请重新查看方案。</translation>
    </message>
    <message>
      <source>The helper refused: {kind}.</source>
      <translation>辅助程序拒绝了请求：{kind}。</translation>
    </message>
    <message>
      <source>the part of Hotspot Guard that reads the firewall is not installed</source>
      <translation>热点守护读取防火墙的组件尚未安装</translation>
    </message>
    <message>
      <source>The helper did not answer in time.</source>
      <translation>辅助程序没有及时响应。</translation>
    </message>
    <message>
      <source>Something went wrong: {what}</source>
      <translation>出错了：{what}</translation>
    </message>
  </context>
  <context>
    <name>FixDialog</name>
    <message>
      <source>Fix the hotspot {iface}</source>
      <translation>修复热点 {iface}</translation>
    </message>
    <message>
      <source>Recommended</source>
      <translation>推荐</translation>
    </message>
    <message>
      <source>Keep after reboot</source>
      <translation>重启后保留</translation>
    </message>
    <message>
      <source>Re-apply the fix when Docker or NetworkManager start (installs a small drop-in and a dispatcher script).</source>
      <translation>在 Docker 或 NetworkManager 启动时重新应用修复（会安装一个小的 systemd drop-in 配置和一个 dispatcher 脚本）。</translation>
    </message>
    <message>
      <source>Apply fix</source>
      <translation>应用修复</translation>
    </message>
    <message>
      <source>Strategy:</source>
      <translation>方案：</translation>
    </message>
    <message>
      <source>Planning…</source>
      <translation>正在规划…</translation>
    </message>
    <message>
      <source>No plan.</source>
      <translation>没有可用方案。</translation>
    </message>
    <message>
      <source>Trade-off: {text}</source>
      <translation>权衡：{text}</translation>
    </message>
    <message>
      <source>Now: {before}
Afterwards: {after}</source>
      <translation>当前：{before}
修复后：{after}</translation>
    </message>
    <message>
      <source>Already applied: applying it again changes nothing.</source>
      <translation>已经应用：再次应用不会有任何变化。</translation>
    </message>
    <message>
      <source>Applying… your desktop may ask for your password.</source>
      <translation>正在应用…桌面可能会要求输入密码。</translation>
    </message>
    <message>
      <source>Applied {id}.</source>
      <translation>已应用 {id}。</translation>
    </message>
    <message>
      <source>{id} was already in place: nothing changed.</source>
      <translation>{id} 已经生效：没有任何改动。</translation>
    </message>
    <message>
      <source>It is kept after reboot.</source>
      <translation>重启后仍会保留。</translation>
    </message>
    <message>
      <source>Checked again: {summary}</source>
      <translation>重新检查：{summary}</translation>
    </message>
  </context>
  <context>
    <name>HotspotCard</name>
    <message>
      <source>{name} ({iface})</source>
      <translation>{name}（{iface}）</translation>
    </message>
    <message>
      <source>Fixes on offer:</source>
      <translation>可用的修复：</translation>
    </message>
    <message>
      <source>Trade-off: looking…</source>
      <translation>权衡：正在评估…</translation>
    </message>
    <message>
      <source>Fix…</source>
      <translation>修复…</translation>
    </message>
    <message>
      <source>Firewall chains…</source>
      <translation>防火墙链…</translation>
    </message>
  </context>
  <context>
    <name>Notifier</name>
    <message>
      <source>unknown error</source>
      <translation>未知错误</translation>
    </message>
    <message>
      <source>Cannot check hotspot %1</source>
      <translation>无法检查热点 %1</translation>
    </message>
    <message>
      <source>%1.</source>
      <translation>%1。</translation>
    </message>
    <message>
      <source>Details</source>
      <translation>详情</translation>
    </message>
    <message>
      <source>Fix…</source>
      <translation>修复…</translation>
    </message>
    <message>
      <source>Hotspot %1 has no internet</source>
      <translation>热点 %1 无法上网</translation>
    </message>
    <message>
      <source>Fix undone on %1</source>
      <translation>已撤销 %1 上的修复</translation>
    </message>
    <message>
      <source>The firewall is as it was before the fix.</source>
      <translation>防火墙已恢复到修复之前的状态。</translation>
    </message>
    <message>
      <source>Hotspot %1 fixed</source>
      <translation>热点 %1 已修复</translation>
    </message>
    <message>
      <source>The phones can reach the internet again.</source>
      <translation>手机又可以访问外网了。</translation>
    </message>
    <message>
      <source>Fix applied on %1</source>
      <translation>已在 %1 上应用修复</translation>
    </message>
    <message>
      <source>The hotspot is still not working: open the details to see why.</source>
      <translation>热点仍然无法上网：请打开详情查看原因。</translation>
    </message>
    <message>
      <source>Could not change the firewall</source>
      <translation>无法修改防火墙</translation>
    </message>
  </context>
  <context>
    <name>QPlatformTheme</name>
    <message>
      <source>Close</source>
      <translation>关闭</translation>
    </message>
  </context>
  <context>
    <name>SharedCard</name>
    <message>
      <source>{name} ({iface})</source>
      <translation>{name}（{iface}）</translation>
    </message>
    <message>
      <source>Shared by NetworkManager. Whether the phones can reach the internet cannot be checked right now.</source>
      <translation>由 NetworkManager 共享。目前无法检查手机能否访问互联网。</translation>
    </message>
  </context>
  <context>
    <name>StateText</name>
    <message>
      <source>No hotspot is on</source>
      <translation>没有开启热点</translation>
    </message>
    <message>
      <source>Hotspot %1: %2</source>
      <translation>热点 %1：%2</translation>
    </message>
    <message>
      <source>Hotspot %1: cannot tell whether the phones can reach the internet</source>
      <translation>热点 %1：无法确定手机能否访问外网</translation>
    </message>
    <message>
      <source>Hotspot %1: the phones can reach the internet</source>
      <translation>热点 %1：手机可以正常访问外网</translation>
    </message>
    <message>
      <source>Hotspots %1: the phones can reach the internet</source>
      <translation>热点 %1：手机都可以正常访问外网</translation>
    </message>
    <message>
      <source>unknown error</source>
      <translation>未知错误</translation>
    </message>
    <message>
      <source>Cannot check the hotspot: %1</source>
      <translation>无法检查热点：%1</translation>
    </message>
    <message>
      <source>IP forwarding is off, so the phones cannot reach the internet</source>
      <translation>IP 转发已关闭，手机无法访问外网</translation>
    </message>
    <message>
      <source>this computer has no route to the internet</source>
      <translation>本机没有通往外网的路由</translation>
    </message>
    <message>
      <source>the phones' traffic is not masqueraded, so no replies come back</source>
      <translation>手机的流量没有做地址伪装（masquerade），收不到回复</translation>
    </message>
    <message>
      <source>untracked replies cannot find their way back to the phones</source>
      <translation>未被连接跟踪的回复包无法回到手机</translation>
    </message>
    <message>
      <source>%1's %2 policy</source>
      <translation>%1 的 %2 链默认策略</translation>
    </message>
    <message>
      <source>a rule in %1's %2 chain</source>
      <translation>%1 的 %2 链中的一条规则</translation>
    </message>
    <message>
      <source>the policy of the %1 chain</source>
      <translation>%1 链的默认策略</translation>
    </message>
    <message>
      <source>a rule in the %1 chain</source>
      <translation>%1 链中的一条规则</translation>
    </message>
    <message>
      <source>%1 rejects %2</source>
      <translation>%1拒绝了%2</translation>
    </message>
    <message>
      <source>%1 drops %2</source>
      <translation>%1丢弃了%2</translation>
    </message>
    <message>
      <source>the phones' address requests (DHCP)</source>
      <translation>手机获取地址的请求（DHCP）</translation>
    </message>
    <message>
      <source>the phones' name lookups (DNS)</source>
      <translation>手机的域名解析请求（DNS）</translation>
    </message>
    <message>
      <source>the phones' traffic</source>
      <translation>手机的流量</translation>
    </message>
    <message>
      <source>the replies to the phones</source>
      <translation>发往手机的回复包</translation>
    </message>
    <message>
      <source>the phones' IPv6 address requests</source>
      <translation>手机的 IPv6 地址请求</translation>
    </message>
    <message>
      <source>the phones' IPv6 name lookups</source>
      <translation>手机的 IPv6 域名解析请求</translation>
    </message>
    <message>
      <source>the phones' IPv6 traffic</source>
      <translation>手机的 IPv6 流量</translation>
    </message>
    <message>
      <source>the IPv6 replies to the phones</source>
      <translation>发往手机的 IPv6 回复包</translation>
    </message>
    <message>
      <source>the phones' IPv6 router solicitations</source>
      <translation>手机的 IPv6 路由器请求</translation>
    </message>
    <message>
      <source>the router advertisements that give the phones IPv6 addresses</source>
      <translation>为手机分配 IPv6 地址的路由器通告</translation>
    </message>
    <message>
      <source>the phones' IPv6 neighbour solicitations</source>
      <translation>手机的 IPv6 邻居请求</translation>
    </message>
    <message>
      <source>the host's IPv6 neighbour advertisements</source>
      <translation>本机的 IPv6 邻居通告</translation>
    </message>
    <message>
      <source>the host's IPv6 neighbour solicitations</source>
      <translation>本机的 IPv6 邻居请求</translation>
    </message>
    <message>
      <source>the phones' IPv6 neighbour advertisements</source>
      <translation>手机的 IPv6 邻居通告</translation>
    </message>
    <message>
      <source>the phones' ARP requests</source>
      <translation>手机的 ARP 请求</translation>
    </message>
    <message>
      <source>the host's ARP replies</source>
      <translation>本机的 ARP 应答</translation>
    </message>
  </context>
  <context>
    <name>StatusWindow</name>
    <message>
      <source>Blocked by {owner}: {where} — {rule}</source>
      <translation>被 {owner} 拦截：{where} — {rule}</translation>
    </message>
    <message>
      <source>Blocked by {owner}: {rule}</source>
      <translation>被 {owner} 拦截：{rule}</translation>
    </message>
    <message>
      <source>%1.</source>
      <translation>%1。</translation>
    </message>
    <message>
      <source>The phones can get an address, look up names and reach the internet.</source>
      <translation>手机可以获取地址、解析域名并访问互联网。</translation>
    </message>
    <message>
      <source>Cannot tell whether the phones can reach the internet.</source>
      <translation>无法判断手机能否访问互联网。</translation>
    </message>
    <message>
      <source>{flow}: {verdict}</source>
      <translation>{flow}：{verdict}</translation>
    </message>
    <message>
      <source>Not available: {why}</source>
      <translation>不可用：{why}</translation>
    </message>
    <message>
      <source>Hotspot firewall</source>
      <translation>热点防火墙</translation>
    </message>
    <message>
      <source>Looking at the firewall…</source>
      <translation>正在读取防火墙…</translation>
    </message>
    <message>
      <source>Working…</source>
      <translation>处理中…</translation>
    </message>
    <message>
      <source>Applied by hotspotguard</source>
      <translation>hotspotguard 已应用的修复</translation>
    </message>
    <message>
      <source>To check it, install that part once (as an administrator):</source>
      <translation>要检查它，请以管理员身份安装该组件（只需一次）：</translation>
    </message>
    <message>
      <source>No hotspot is active.</source>
      <translation>没有开启的热点。</translation>
    </message>
    <message>
      <source>Every hotspot works: clients get an address, names and the internet.</source>
      <translation>所有热点都正常：设备能获取地址、解析域名并访问外网。</translation>
    </message>
    <message>
      <source>Cannot check the hotspot: {reason}</source>
      <translation>无法检查热点：{reason}</translation>
    </message>
    <message>
      <source>Cannot tell whether the hotspot works.</source>
      <translation>无法确定热点是否正常。</translation>
    </message>
    <message>
      <source>A hotspot is blocked.</source>
      <translation>有热点被防火墙拦截。</translation>
    </message>
    <message>
      <source>Trade-off: {text}</source>
      <translation>权衡：{text}</translation>
    </message>
    <message>
      <source>(applied)</source>
      <translation>（已应用）</translation>
    </message>
    <message>
      <source>kept after reboot</source>
      <translation>重启后保留</translation>
    </message>
    <message>
      <source>until reboot</source>
      <translation>重启前有效</translation>
    </message>
    <message>
      <source>{summary} ({keep})</source>
      <translation>{summary}（{keep}）</translation>
    </message>
    <message>
      <source>Not in place any more: apply it again.</source>
      <translation>已不再生效：请重新应用。</translation>
    </message>
    <message>
      <source>Undo</source>
      <translation>撤销</translation>
    </message>
  </context>
  <context>
    <name>Tray</name>
    <message>
      <source>Hotspot status…</source>
      <translation>热点状态…</translation>
    </message>
    <message>
      <source>Fix…</source>
      <translation>修复…</translation>
    </message>
    <message>
      <source>Undo</source>
      <translation>撤销</translation>
    </message>
    <message>
      <source>Firewall chains…</source>
      <translation>防火墙链…</translation>
    </message>
    <message>
      <source>Start with Plasma</source>
      <translation>随 Plasma 启动</translation>
    </message>
    <message>
      <source>Start at login</source>
      <translation>登录时启动</translation>
    </message>
    <message>
      <source>Quit</source>
      <translation>退出</translation>
    </message>
  </context>
  <context>
    <name>Wording</name>
    <message>
      <source>getting an address (DHCP)</source>
      <translation>获取地址（DHCP）</translation>
    </message>
    <message>
      <source>name lookups (DNS)</source>
      <translation>域名解析（DNS）</translation>
    </message>
    <message>
      <source>outbound traffic</source>
      <translation>出站流量</translation>
    </message>
    <message>
      <source>replies from the internet</source>
      <translation>来自外网的回复</translation>
    </message>
    <message>
      <source>IPv6 getting an address (DHCP)</source>
      <translation>IPv6 获取地址（DHCP）</translation>
    </message>
    <message>
      <source>IPv6 name lookups (DNS)</source>
      <translation>IPv6 域名解析（DNS）</translation>
    </message>
    <message>
      <source>IPv6 outbound traffic</source>
      <translation>IPv6 出站流量</translation>
    </message>
    <message>
      <source>IPv6 replies from the internet</source>
      <translation>来自外网的 IPv6 回复</translation>
    </message>
    <message>
      <source>ARP requests</source>
      <translation>ARP 请求</translation>
    </message>
    <message>
      <source>ARP replies</source>
      <translation>ARP 应答</translation>
    </message>
    <message>
      <source>IPv6 router solicitations</source>
      <translation>IPv6 路由器请求</translation>
    </message>
    <message>
      <source>IPv6 router advertisements</source>
      <translation>IPv6 路由器通告</translation>
    </message>
    <message>
      <source>IPv6 neighbour solicitations</source>
      <translation>IPv6 邻居请求</translation>
    </message>
    <message>
      <source>IPv6 neighbour advertisements</source>
      <translation>IPv6 邻居通告</translation>
    </message>
    <message>
      <source>DHCP</source>
      <translation>DHCP</translation>
    </message>
    <message>
      <source>DNS</source>
      <translation>DNS</translation>
    </message>
    <message>
      <source>Internet</source>
      <translation>外网</translation>
    </message>
    <message>
      <source>Replies</source>
      <translation>回复</translation>
    </message>
    <message>
      <source>Router solicitations</source>
      <translation>路由器请求</translation>
    </message>
    <message>
      <source>Router advertisements</source>
      <translation>路由器通告</translation>
    </message>
    <message>
      <source>Neighbour solicitations (in)</source>
      <translation>邻居请求（入）</translation>
    </message>
    <message>
      <source>Neighbour advertisements (out)</source>
      <translation>邻居通告（出）</translation>
    </message>
    <message>
      <source>Neighbour solicitations (out)</source>
      <translation>邻居请求（出）</translation>
    </message>
    <message>
      <source>Neighbour advertisements (in)</source>
      <translation>邻居通告（入）</translation>
    </message>
    <message>
      <source>IPv6 {flow}</source>
      <translation>IPv6 {flow}</translation>
    </message>
    <message>
      <source>DHCP discover from a new client on {iface}</source>
      <translation>{iface} 上新客户端的 DHCP 发现请求</translation>
    </message>
    <message>
      <source>DHCPv6 solicit from a new client on {iface}</source>
      <translation>{iface} 上新客户端的 DHCPv6 请求</translation>
    </message>
    <message>
      <source>IPv4 DNS query from {client} to {gateway}</source>
      <translation>{client} 发往 {gateway} 的 IPv4 DNS 查询</translation>
    </message>
    <message>
      <source>IPv6 DNS query from {client} to {gateway}</source>
      <translation>{client} 发往 {gateway} 的 IPv6 DNS 查询</translation>
    </message>
    <message>
      <source>new IPv4 connection from {client} to the internet via {uplink}</source>
      <translation>{client} 经 {uplink} 到互联网的新 IPv4 连接</translation>
    </message>
    <message>
      <source>new IPv6 connection from {client} to the internet via {uplink}</source>
      <translation>{client} 经 {uplink} 到互联网的新 IPv6 连接</translation>
    </message>
    <message>
      <source>the internet's IPv4 reply to {client}</source>
      <translation>互联网对 {client} 的 IPv4 回复</translation>
    </message>
    <message>
      <source>the internet's IPv6 reply to {client}</source>
      <translation>互联网对 {client} 的 IPv6 回复</translation>
    </message>
    <message>
      <source>ARP request for {gateway} from {client} on {iface}</source>
      <translation>{iface} 上 {client} 查询 {gateway} 的 ARP 请求</translation>
    </message>
    <message>
      <source>the host's ARP reply to {client} on {iface}</source>
      <translation>本机在 {iface} 上给 {client} 的 ARP 回复</translation>
    </message>
    <message>
      <source>router solicitation from a new client on {iface}</source>
      <translation>{iface} 上新客户端的路由器请求</translation>
    </message>
    <message>
      <source>router advertisement to the clients on {iface}</source>
      <translation>发往 {iface} 上客户端的路由器通告</translation>
    </message>
    <message>
      <source>neighbour solicitation from a client resolving its router on {iface}</source>
      <translation>{iface} 上客户端解析其路由器的邻居请求</translation>
    </message>
    <message>
      <source>neighbour advertisement of the router to a client on {iface}</source>
      <translation>路由器在 {iface} 上发给客户端的邻居通告</translation>
    </message>
    <message>
      <source>neighbour solicitation for {client} from the host on {iface}</source>
      <translation>本机在 {iface} 上查询 {client} 的邻居请求</translation>
    </message>
    <message>
      <source>neighbour advertisement from {client} to the host on {iface}</source>
      <translation>{client} 在 {iface} 上发给本机的邻居通告</translation>
    </message>
    <message>
      <source>no uplink</source>
      <translation>无上行接口</translation>
    </message>
    <message>
      <source>ok</source>
      <translation>正常</translation>
    </message>
    <message>
      <source>blocked</source>
      <translation>被拦截</translation>
    </message>
    <message>
      <source>unknown</source>
      <translation>未知</translation>
    </message>
    <message>
      <source>router advertisements (SLAAC)</source>
      <translation>路由器通告（SLAAC）</translation>
    </message>
    <message>
      <source>DHCPv6</source>
      <translation>DHCPv6</translation>
    </message>
    <message>
      <source>DNS over IPv6</source>
      <translation>IPv6 上的 DNS</translation>
    </message>
    <message>
      <source>the kernel's forwarding setting</source>
      <translation>内核的转发设置</translation>
    </message>
    <message>
      <source>the {rule} of chain {chain} in table {family} {table} ({source}), which no known program set,</source>
      <translation>表 {family} {table}（{source}）中链 {chain} 的 {rule}（不是任何已知程序设置的）</translation>
    </message>
    <message>
      <source>a rule in table {family} {table} ({source}) chain {chain} that no known program wrote</source>
      <translation>表 {family} {table}（{source}）链 {chain} 中一条不属于任何已知程序的规则</translation>
    </message>
    <message>
      <source>{who}'s {table} {chain} {rule}</source>
      <translation>{who} 的 {table} {chain} {rule}</translation>
    </message>
    <message>
      <source>{who}'s {table} {chain} rule</source>
      <translation>{who} 的 {table} {chain} 规则</translation>
    </message>
    <message>
      <source>ok: clients of {iface} can get an address, look up names and reach the internet</source>
      <translation>正常：{iface} 的客户端可以获取地址、解析域名并访问外网</translation>
    </message>
    <message>
      <source>blocked: {rule}, so {flow} from {iface} gets no answer</source>
      <translation>被拦截：{rule}，因此来自 {iface} 的{flow}得不到回复</translation>
    </message>
    <message>
      <source>blocked: the host has no default route for {flow} from {iface}</source>
      <translation>被拦截：本机没有供来自 {iface} 的{flow}使用的默认路由</translation>
    </message>
    <message>
      <source>blocked: {where} stops {flow} to {iface}</source>
      <translation>被拦截：{where} 拦下了发往 {iface} 的{flow}</translation>
    </message>
    <message>
      <source>blocked: {where} stops {flow} from {iface}</source>
      <translation>被拦截：{where} 拦下了来自 {iface} 的{flow}</translation>
    </message>
    <message>
      <source>, </source>
      <translation>、</translation>
    </message>
    <message>
      <source>unknown: cannot tell whether {flows} from {iface} get through: {reason}</source>
      <translation>未知：无法判断来自 {iface} 的{flows}能否通过：{reason}</translation>
    </message>
    <message>
      <source> (undecidable: {rules})</source>
      <translation>（无法判定：{rules}）</translation>
    </message>
    <message>
      <source>IPv6: {iface} serves {services}</source>
      <translation>IPv6：{iface} 提供 {services}</translation>
    </message>
    <message>
      <source>nothing</source>
      <translation>无</translation>
    </message>
    <message>
      <source>; not {services} (their flows only inform)</source>
      <translation>；不提供 {services}（其流量仅供参考）</translation>
    </message>
    <message>
      <source> — assumed: the snapshot does not say, NetworkManager's own sharing serves this</source>
      <translation>——推测：快照未说明，按 NetworkManager 自带共享的默认情况</translation>
    </message>
    <message>
      <source>accept the hotspot's traffic in Docker's DOCKER-USER chain</source>
      <translation>在 Docker 的 DOCKER-USER 链中放行热点流量</translation>
    </message>
    <message>
      <source>turn IPv4/IPv6 forwarding on</source>
      <translation>开启 IPv4/IPv6 转发</translation>
    </message>
    <message>
      <source>Docker 28's ip-forward-no-drop option, and the FORWARD policy accept now</source>
      <translation>启用 Docker 28 的 ip-forward-no-drop 选项，并立即将 FORWARD 策略设为接受</translation>
    </message>
    <message>
      <source>clear the FORWARD drop Docker's old iptables backend left behind</source>
      <translation>清除 Docker 旧 iptables 后端遗留的 FORWARD 丢弃规则</translation>
    </message>
    <message>
      <source>ufw's own rules: route allow to the uplinks, allow DHCP and DNS in</source>
      <translation>使用 ufw 自己的规则：允许路由到上行接口，允许 DHCP 和 DNS 进入</translation>
    </message>
    <message>
      <source>put the hotspot into firewalld's nm-shared zone, through firewalld</source>
      <translation>通过 firewalld 将热点放入 firewalld 的 nm-shared 区域</translation>
    </message>
    <message>
      <source>accept the hotspot's forwarded traffic before the rule that drops it</source>
      <translation>在丢弃热点转发流量的规则之前放行它</translation>
    </message>
    <message>
      <source>accept DHCP and DNS from the hotspot before the rule that drops them</source>
      <translation>在丢弃热点 DHCP 和 DNS 的规则之前放行它们</translation>
    </message>
    <message>
      <source>run dockerd in a network namespace of its own, its rules off the host's</source>
      <translation>让 dockerd 运行在独立的网络命名空间中，其规则不再位于本机</translation>
    </message>
    <message>
      <source>several strategies in one plan, for several culprits at once</source>
      <translation>一个方案包含多种策略，一次处理多个拦截源</translation>
    </message>
    <message>
      <source>Least privileged: the phones reach the internet, Docker's networks stay closed to them.</source>
      <translation>权限最小：手机可以访问外网，Docker 的网络仍对它们关闭。</translation>
    </message>
    <message>
      <source>This computer forwards traffic between its networks, as a router does.</source>
      <translation>本机会像路由器一样在其网络之间转发流量。</translation>
    </message>
    <message>
      <source>Docker's other forwarded traffic is no longer dropped by default.</source>
      <translation>Docker 的其他转发流量将不再被默认丢弃。</translation>
    </message>
    <message>
      <source>Only rules Docker no longer uses are removed.</source>
      <translation>只移除 Docker 已不再使用的规则。</translation>
    </message>
    <message>
      <source>ufw keeps the rules; they let only the hotspot's traffic through.</source>
      <translation>规则由 ufw 保存；它们只放行热点的流量。</translation>
    </message>
    <message>
      <source>firewalld keeps the hotspot in the zone it made for shared connections (or in its trusted zone, which accepts every service from the hotspot); it survives reloads.</source>
      <translation>firewalld 将热点保留在其为共享连接设立的区域中（或其 trusted 区域，该区域放行来自热点的所有服务）；重新加载后依然有效。</translation>
    </message>
    <message>
      <source>It edits another program's firewall table, which that program may rewrite; nothing else is let through.</source>
      <translation>它会修改其他程序的防火墙表，该程序可能会重写它；不会放行其他任何流量。</translation>
    </message>
    <message>
      <source>Published ports then live on Docker's own address, not on this computer's; containers no longer see this computer's interfaces; Docker restarts once.</source>
      <translation>此后发布的端口位于 Docker 自己的地址上，而不是本机的地址；容器不再能看到本机的网络接口；Docker 会重启一次。</translation>
    </message>
    <message>
      <source>Each step as its strategy does.</source>
      <translation>每一步的影响同其策略。</translation>
    </message>
    <message>
      <source>For {iface}: {steps}</source>
      <translation>针对 {iface}：{steps}</translation>
    </message>
    <message>
      <source>; then </source>
      <translation>；然后</translation>
    </message>
    <message>
      <source>For {iface}: {action}</source>
      <translation>针对 {iface}：{action}</translation>
    </message>
    <message>
      <source>; </source>
      <translation>；</translation>
    </message>
    <message>
      <source>in {zone}, {why}</source>
      <translation>在 {zone} 区域中，{why}</translation>
    </message>
    <message>
      <source>{strategy}: {why}</source>
      <translation>{strategy}：{why}</translation>
    </message>
    <message>
      <source>none</source>
      <translation>无</translation>
    </message>
    <message>
      <source>forwarded traffic</source>
      <translation>转发流量</translation>
    </message>
    <message>
      <source>DHCP and DNS</source>
      <translation>DHCP 和 DNS</translation>
    </message>
    <message>
      <source>{iface} is not a hotspot (no shared connection uses it)</source>
      <translation>{iface} 不是热点（没有共享连接使用它）</translation>
    </message>
    <message>
      <source>there is no uplink (no default route) to let the hotspot out to</source>
      <translation>没有上行链路（没有默认路由），热点的流量无处可出</translation>
    </message>
    <message>
      <source>there is no uplink (no default route) to route the hotspot to</source>
      <translation>没有上行链路（没有默认路由），无法为热点路由</translation>
    </message>
    <message>
      <source>Docker's DOCKER-USER chain is not there (Docker not running, or Docker 29 with its nftables backend)</source>
      <translation>Docker 的 DOCKER-USER 链不存在（Docker 未运行，或 Docker 29 使用其 nftables 后端）</translation>
    </message>
    <message>
      <source>forwarding is already on</source>
      <translation>转发已经开启</translation>
    </message>
    <message>
      <source>whether ufw is installed is not in the snapshot (explain on the machine itself to check)</source>
      <translation>快照中没有记录是否安装了 ufw（请在该机器上运行 explain 检查）</translation>
    </message>
    <message>
      <source>ufw is not installed here (no /usr/sbin/ufw)</source>
      <translation>此处未安装 ufw（没有 /usr/sbin/ufw）</translation>
    </message>
    <message>
      <source>ufw is not active here (its user chains are not loaded)</source>
      <translation>此处 ufw 未启用（其用户链未加载）</translation>
    </message>
    <message>
      <source>ufw drops none of the hotspot's traffic</source>
      <translation>ufw 没有丢弃热点的任何流量</translation>
    </message>
    <message>
      <source>firewalld's table (inet firewalld) is not loaded here</source>
      <translation>此处未加载 firewalld 的表（inet firewalld）</translation>
    </message>
    <message>
      <source>firewalld's zones are not in the snapshot (explain on the machine itself to check)</source>
      <translation>快照中没有 firewalld 的区域（请在该机器上运行 explain 检查）</translation>
    </message>
    <message>
      <source>firewalld is not running (its table is loaded, but nothing answers on the system bus)</source>
      <translation>firewalld 未运行（其表已加载，但系统总线上无人应答）</translation>
    </message>
    <message>
      <source>firewalld has no zone nm-shared or trusted to put the hotspot in (its zones: {zones})</source>
      <translation>firewalld 没有可放入热点的 nm-shared 或 trusted 区域（它的区域：{zones}）</translation>
    </message>
    <message>
      <source>firewalld's settings of zone {zone} are unknown</source>
      <translation>firewalld 的 {zone} 区域设置未知</translation>
    </message>
    <message>
      <source>no zone of firewalld's is enough: {failed}</source>
      <translation>firewalld 的区域都不够：{failed}</translation>
    </message>
    <message>
      <source>the host's Docker, networks and systemd are not in the snapshot (explain on the machine itself to check)</source>
      <translation>快照中没有本机的 Docker、网络和 systemd 信息（请在该机器上运行 explain 检查）</translation>
    </message>
    <message>
      <source>Docker is not installed here (no dockerd)</source>
      <translation>此处未安装 Docker（没有 dockerd）</translation>
    </message>
    <message>
      <source>no free private /30 for the veth: the host's addresses and routes cover {pools}</source>
      <translation>没有可供 veth 使用的空闲私有 /30：本机的地址和路由已覆盖 {pools}</translation>
    </message>
    <message>
      <source>{path} is there and is not hotspotguard's</source>
      <translation>{path} 已存在，且不是 hotspotguard 写的</translation>
    </message>
    <message>
      <source>{link} is a veth an earlier namespace set-up left: remove it first (ip link delete {link})</source>
      <translation>{link} 是之前的命名空间设置遗留的 veth：请先删除它（ip link delete {link}）</translation>
    </message>
    <message>
      <source>{link} is a {kind} device, not Docker's bridge</source>
      <translation>{link} 是 {kind} 设备，不是 Docker 的网桥</translation>
    </message>
    <message>
      <source>Docker does not run its nftables backend here (no docker-bridges table): its iptables rules are live, not stale</source>
      <translation>此处 Docker 没有运行其 nftables 后端（没有 docker-bridges 表）：它的 iptables 规则仍在使用，并非遗留</translation>
    </message>
    <message>
      <source>Docker's old iptables backend left no rules here</source>
      <translation>Docker 旧的 iptables 后端在此处没有遗留规则</translation>
    </message>
    <message>
      <source>{path} is not valid JSON ({error}): fix it first</source>
      <translation>{path} 不是有效的 JSON（{error}）：请先修正它</translation>
    </message>
    <message>
      <source>{path} is not a JSON object: fix it first</source>
      <translation>{path} 不是 JSON 对象：请先修正它</translation>
    </message>
    <message>
      <source>Docker's version is not in the snapshot: the option exists from Docker {needed} on (explain on the machine itself to check)</source>
      <translation>快照中没有 Docker 的版本：该选项从 Docker {needed} 起才有（请在该机器上运行 explain 检查）</translation>
    </message>
    <message>
      <source>Docker is not installed here (no dockerd, no API socket)</source>
      <translation>此处未安装 Docker（没有 dockerd，也没有 API 套接字）</translation>
    </message>
    <message>
      <source>Docker {version} is older than {needed}: the {option} option does not exist</source>
      <translation>Docker {version} 早于 {needed}：没有 {option} 选项</translation>
    </message>
    <message>
      <source>{family} {table} is not in the ruleset</source>
      <translation>规则集中没有 {family} {table}</translation>
    </message>
    <message>
      <source>the drop is in {family} {table} ({source}), which this strategy does not edit</source>
      <translation>丢弃发生在 {family} {table}（{source}）中，此策略不修改它</translation>
    </message>
    <message>
      <source>{family} {table} has no chain {chain}</source>
      <translation>{family} {table} 没有 {chain} 链</translation>
    </message>
    <message>
      <source>the hotspot has no address for {flows}</source>
      <translation>热点没有用于 {flows} 的地址</translation>
    </message>
    <message>
      <source>no firewall table drops the hotspot's {kind}</source>
      <translation>没有防火墙表丢弃热点的{kind}</translation>
    </message>
    <message>
      <source>the ruleset has no handle for {rule}</source>
      <translation>规则集中没有 {rule} 的句柄</translation>
    </message>
    <message>
      <source>unknown strategy {strategy}</source>
      <translation>未知策略 {strategy}</translation>
    </message>
    <message>
      <source>{family} {table} {chain} is not there</source>
      <translation>{family} {table} {chain} 不存在</translation>
    </message>
    <message>
      <source>one strategy is all it takes here</source>
      <translation>此处一个策略就足够了</translation>
    </message>
    <message>
      <source>no strategy gets past what blocks the hotspot</source>
      <translation>没有策略能越过拦截热点的规则</translation>
    </message>
    <message>
      <source>{strategy} would not be enough: after it, {after}</source>
      <translation>{strategy} 不够：应用后，{after}</translation>
    </message>
    <message>
      <source>it could not be planned: {error}</source>
      <translation>无法规划：{error}</translation>
    </message>
    <message>
      <source>evaluating this flow would take more than {steps} rule visits (chains that jump to chains many times over): the engine stopped rather than run unbounded</source>
      <translation>判定此流量需要超过 {steps} 次规则访问（链之间反复跳转）：引擎已停止，以免无限运行</translation>
    </message>
    <message>
      <source>too many undecidable rules</source>
      <translation>无法判定的规则太多</translation>
    </message>
    <message>
      <source>{kind} rewrites the destination</source>
      <translation>{kind} 改写了目的地址</translation>
    </message>
    <message>
      <source>a rule hands the packet to a program or an unknown target</source>
      <translation>某条规则把数据包交给了某个程序或未知目标</translation>
    </message>
    <message>
      <source>{kind} to a chain that does not exist: {target}</source>
      <translation>{kind} 到一条不存在的链：{target}</translation>
    </message>
    <message>
      <source>jumps nested too deep</source>
      <translation>跳转嵌套过深</translation>
    </message>
    <message>
      <source>{key} is not in the snapshot</source>
      <translation>快照中没有 {key}</translation>
    </message>
    <message>
      <source>whether the connection is masqueraded is undecidable</source>
      <translation>无法判定连接是否经过伪装（masquerade）</translation>
    </message>
    <message>
      <source>the connection is in conntrack zone {zone} and its reply is looked up in zone {reply_zone}: conntrack does not find it</source>
      <translation>连接位于 conntrack 区域 {zone}，而其回复在区域 {reply_zone} 中查找：conntrack 找不到它</translation>
    </message>
    <message>
      <source>the snapshot has no routes, which its route lookups (fib, rpfilter) need</source>
      <translation>快照中没有路由，而其路由查找（fib、rpfilter）需要路由</translation>
    </message>
    <message>
      <source>policy routing rules select packets by mark, interface or address: the engine cannot make its route lookups (fib, rpfilter)</source>
      <translation>策略路由规则按标记、接口或地址选择数据包：引擎无法进行其路由查找（fib、rpfilter）</translation>
    </message>
    <message>
      <source>the host has more than {limit} routes, which the engine does not read: it cannot make its route lookups (fib, rpfilter)</source>
      <translation>本机有超过 {limit} 条路由，引擎不读取这么多路由：它无法进行其路由查找（fib、rpfilter）</translation>
    </message>
    <message>
      <source>the snapshot does not say which device the ingress chain {family} {table} {chain} is on (nft 1.0.x's JSON leaves it out), and it may drop the flow</source>
      <translation>快照没有说明 ingress 链 {family} {table} {chain} 挂在哪个设备上（nft 1.0.x 的 JSON 省略了它），而它可能丢弃此流量</translation>
    </message>
    <message>
      <source>the chain {family} {table} {chain} is at conntrack's priority ({priority}): whether it runs before or after conntrack depends on which registered last, which no snapshot holds, and the outcomes differ</source>
      <translation>链 {family} {table} {chain} 处于 conntrack 的优先级（{priority}）：它在 conntrack 之前还是之后运行取决于谁最后注册，快照中没有这一信息，而两种结果不同</translation>
    </message>
    <message>
      <source>the chain {family} {table} {chain} is at the nat core's priority: whether it sees the packet before or after its address translation depends on which registered last, which no snapshot holds, and the outcomes differ</source>
      <translation>链 {family} {table} {chain} 处于 NAT 核心的优先级：它在地址转换之前还是之后看到数据包取决于谁最后注册，快照中没有这一信息，而两种结果不同</translation>
    </message>
    <message>
      <source>the outcome depends on rules the engine cannot decide</source>
      <translation>结果取决于引擎无法判定的规则</translation>
    </message>
    <message>
      <source>the host is no IPv6 router ({key} = 0): nothing listens on ff02::2</source>
      <translation>本机不是 IPv6 路由器（{key} = 0）：没有程序监听 ff02::2</translation>
    </message>
    <message>
      <source>the reply is untracked, so nothing translates it back to the client</source>
      <translation>回复未被跟踪，因此没有东西把它转换回客户端</translation>
    </message>
    <message>
      <source>no default route: the host has no uplink</source>
      <translation>没有默认路由：本机没有上行链路</translation>
    </message>
    <message>
      <source>a rule set the packet type to {pkttype}: the kernel forwards only packets of type host</source>
      <translation>某条规则把数据包类型设为 {pkttype}：内核只转发类型为 host 的数据包</translation>
    </message>
    <message>
      <source>forwarding is off ({key} = 0)</source>
      <translation>转发已关闭（{key} = 0）</translation>
    </message>
    <message>
      <source>the connection leaves unmasqueraded: replies cannot find the client</source>
      <translation>连接未经伪装就离开了：回复找不到客户端</translation>
    </message>
    <message>
      <source>the hotspot has no address</source>
      <translation>热点没有地址</translation>
    </message>
    <message>
      <source>{tool} failed while {step} (exit status {status}): “{detail}”</source>
      <translation>{step}时 {tool} 失败（退出状态 {status}）：“{detail}”</translation>
    </message>
    <message>
      <source>{tool} failed while {step} (exit status {status}) and said nothing</source>
      <translation>{step}时 {tool} 失败（退出状态 {status}），且没有给出任何信息</translation>
    </message>
    <message>
      <source>{tool} is not installed, and {step} needs it</source>
      <translation>未安装 {tool}，而{step}需要它</translation>
    </message>
    <message>
      <source>{tool} did not finish in {seconds} s while {step}</source>
      <translation>{step}时 {tool} 未在 {seconds} 秒内完成</translation>
    </message>
    <message>
      <source>{tool} printed nothing readable while {step}</source>
      <translation>{step}时 {tool} 没有输出可读的内容</translation>
    </message>
    <message>
      <source>cannot set {name}: “{detail}”</source>
      <translation>无法设置 {name}：“{detail}”</translation>
    </message>
    <message>
      <source>firewalld refused {member}: “{detail}”</source>
      <translation>firewalld 拒绝了 {member}：“{detail}”</translation>
    </message>
    <message>
      <source>firewalld is not running (nothing answers on the system bus)</source>
      <translation>firewalld 没有运行（系统总线上没有应答）</translation>
    </message>
    <message>
      <source>firewalld is not running (there is no system bus)</source>
      <translation>firewalld 没有运行（没有系统总线）</translation>
    </message>
    <message>
      <source>firewalld did not answer in {seconds} s</source>
      <translation>firewalld 未在 {seconds} 秒内应答</translation>
    </message>
    <message>
      <source>reading {family} table {table}</source>
      <translation>读取 {family} 表 {table}</translation>
    </message>
    <message>
      <source>reading {family} {table} {chain}</source>
      <translation>读取 {family} {table} {chain}</translation>
    </message>
    <message>
      <source>changing the rules of {family} {table} {chain}</source>
      <translation>修改 {family} {table} {chain} 的规则</translation>
    </message>
    <message>
      <source>loading {family} table {table}</source>
      <translation>加载 {family} 表 {table}</translation>
    </message>
    <message>
      <source>deleting {family} table {table}</source>
      <translation>删除 {family} 表 {table}</translation>
    </message>
    <message>
      <source>having systemd read its unit files again</source>
      <translation>让 systemd 重新读取其单元文件</translation>
    </message>
    <message>
      <source>restarting {unit}</source>
      <translation>重启 {unit}</translation>
    </message>
    <message>
      <source>running “ufw {args}”</source>
      <translation>运行“ufw {args}”</translation>
    </message>
    <message>
      <source>cannot read the ruleset's generation: “{detail}”</source>
      <translation>无法读取规则集的世代号：“{detail}”</translation>
    </message>
    <message>
      <source>the firewall keeps changing; try again in a moment</source>
      <translation>防火墙一直在变化；请稍后再试</translation>
    </message>
    <message>
      <source>{table} {chain} is not there any more</source>
      <translation>{table} {chain} 已不存在</translation>
    </message>
    <message>
      <source>{iface} is not blocked: nothing to fix</source>
      <translation>{iface} 没有被拦截：无需修复</translation>
    </message>
    <message>
      <source>no fix works here ({failed})</source>
      <translation>这里没有可用的修复（{failed}）</translation>
    </message>
    <message>
      <source>no fix is built for this yet: {verdict}</source>
      <translation>尚无针对此情况的修复：{verdict}</translation>
    </message>
    <message>
      <source>no fix has been applied</source>
      <translation>尚未应用任何修复</translation>
    </message>
    <message>
      <source>no fix {fix} is applied</source>
      <translation>没有已应用的修复 {fix}</translation>
    </message>
    <message>
      <source>cannot save the record of fixes: “{detail}”</source>
      <translation>无法保存修复记录：“{detail}”</translation>
    </message>
    <message>
      <source>cannot write the files that keep fixes: “{detail}”</source>
      <translation>无法写入保持修复的文件：“{detail}”</translation>
    </message>
    <message>
      <source>cannot finish an interrupted fix: {why}</source>
      <translation>无法完成一次被中断的修复：{why}</translation>
    </message>
    <message>
      <source>{iface} is not a shared connection now ({source} shares: {shared}): hotspotguard fixes only hotspots</source>
      <translation>{iface} 目前不是共享连接（{source} 共享的是：{shared}）：hotspotguard 只修复热点</translation>
    </message>
    <message>
      <source>{path} is there and is not as planned: preview the fix again</source>
      <translation>{path} 已存在，且与方案不符：请重新预览修复</translation>
    </message>
    <message>
      <source>table {family} {table} is there and is not as planned: preview the fix again</source>
      <translation>表 {family} {table} 已存在，且与方案不符：请重新预览修复</translation>
    </message>
    <message>
      <source>{path} changed since the fix was planned: preview it again</source>
      <translation>制定修复方案后 {path} 已被改动：请重新预览</translation>
    </message>
    <message>
      <source>{path} was edited since the fix: left as it is</source>
      <translation>修复之后 {path} 被编辑过：保持原样</translation>
    </message>
    <message>
      <source>{path} was edited since the fix: left as it is; the old one is in {backup}</source>
      <translation>修复之后 {path} 被编辑过：保持原样；旧文件在 {backup}</translation>
    </message>
    <message>
      <source>table {family} {table} was changed since the fix: left as it is</source>
      <translation>修复之后表 {family} {table} 被改动过：保持原样</translation>
    </message>
  </context>
</TS>
